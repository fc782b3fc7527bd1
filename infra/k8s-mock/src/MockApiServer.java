import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import io.fabric8.mockwebserver.dsl.HttpMethod;
import io.fabric8.mockwebserver.http.Dispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.net.InetAddress;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Kubernetes API server for tests: fabric8's mock server in CRUD mode (an in-memory store that
 * serves create/get/list/patch/replace/delete/watch for any resource) on 127.0.0.1:PORT, plain HTTP.
 *
 * The CRUD store has no kubelet, so pod logs are served here: a test plays the container by
 * writing a pod's output with PUT /mock/namespaces/NS/pods/NAME/log (text body), and
 * GET /api/v1/namespaces/NS/pods/NAME/log returns it (404 while the pod does not exist).
 *
 * Like a real API server (and unlike the bare CRUD store), creating anything in a namespace that
 * does not exist answers 404.
 *
 * With K8S_MOCK_TOKEN set, every request must carry "Authorization: Bearer <that token>" (401
 * otherwise), so a test can tell that a client really uses the credentials of its kubeconfig.
 *
 * Usage: java -cp ... MockApiServer PORT — prints "k8s-mock ready http://127.0.0.1:PORT" once
 * listening (PORT 0: a free one), then runs until killed.
 */
public final class MockApiServer {
  private static final Pattern LOG_PATH =
      Pattern.compile("^/api/v1/namespaces/([^/]+)/pods/([^/?]+)/log(\\?.*)?$");
  private static final Pattern NAMESPACED_PATH =
      Pattern.compile("^/apis?/(?:[^/]+/)?[^/]+/namespaces/([^/]+)/[^/?]+.*$");
  private static final Pattern MOCK_LOG_PATH =
      Pattern.compile("^/mock/namespaces/([^/]+)/pods/([^/?]+)/log$");

  /** Checks the token and namespaces, serves pod logs, and hands everything else to the CRUD store. */
  static final class LogDispatcher extends Dispatcher {
    private final Dispatcher crud;
    private final String token;
    private final Map<String, String> logs = new ConcurrentHashMap<>();

    LogDispatcher(Dispatcher crud, String token) {
      this.crud = crud;
      this.token = token;
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
      if (token != null && !("Bearer " + token).equals(request.getHeader("Authorization"))) {
        return status(401, "Unauthorized", "Unauthorized");
      }
      String path = request.getPath();
      Matcher put = MOCK_LOG_PATH.matcher(path);
      if (put.matches() && "PUT".equals(request.getMethod())) {
        logs.put(put.group(1) + "/" + put.group(2), request.getUtf8Body());
        return new MockResponse().setResponseCode(204);
      }
      // Like a real API server: nothing is created in a namespace that does not exist.
      Matcher namespaced = NAMESPACED_PATH.matcher(path);
      if (namespaced.matches() && "POST".equals(request.getMethod())) {
        String ns = namespaced.group(1);
        if (get(request, "/api/v1/namespaces/" + ns).code() == 404) {
          return status(404, "NotFound", "namespaces \"" + ns + "\" not found");
        }
      }
      Matcher get = LOG_PATH.matcher(path);
      if (get.matches() && "GET".equals(request.getMethod())) {
        String pod = "/api/v1/namespaces/" + get.group(1) + "/pods/" + get.group(2);
        // The pod must exist, as on a real cluster (the log of an unknown pod is a 404).
        MockResponse found = get(request, pod);
        if (found.code() != 200) return found;
        String text = logs.getOrDefault(get.group(1) + "/" + get.group(2), "");
        return new MockResponse()
            .setResponseCode(200)
            .setHeader("Content-Type", "text/plain")
            .setBody(text);
      }
      return withJsonType(crud.dispatch(request));
    }

    /** The CRUD store sends JSON without saying so; clients that parse by Content-Type need it. */
    private static MockResponse withJsonType(MockResponse response) {
      if (response.getWebSocketListener() == null && response.header("Content-Type") == null) {
        response.setHeader("Content-Type", "application/json");
      }
      return response;
    }

    private MockResponse get(RecordedRequest like, String path) {
      return crud.dispatch(new RecordedRequest(like.getHttpVersion(), HttpMethod.GET, path, like.getHeaders(), null));
    }

    /** A failure as the API server words it (a v1 Status). */
    private static MockResponse status(int code, String reason, String message) {
      return new MockResponse()
          .setResponseCode(code)
          .setHeader("Content-Type", "application/json")
          .setBody("{\"apiVersion\":\"v1\",\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\""
              + message.replace("\"", "\\\"") + "\",\"reason\":\"" + reason + "\",\"code\":" + code + "}");
    }
  }

  // jsonMapper() is deprecated, but it is what KubernetesMockServer's own constructors use.
  @SuppressWarnings("deprecation")
  public static void main(String[] args) throws Exception {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    Map<ServerRequest, Queue<ServerResponse>> responses = new HashMap<>();
    Dispatcher dispatcher = new LogDispatcher(new KubernetesMixedDispatcher(responses), System.getenv("K8S_MOCK_TOKEN"));
    KubernetesMockServer server = new KubernetesMockServer(
        new Context(Serialization.jsonMapper()), new MockWebServer(), responses, dispatcher, false);
    server.init(InetAddress.getByName("127.0.0.1"), port);
    Runtime.getRuntime().addShutdownHook(new Thread(server::destroy));
    System.out.println("k8s-mock ready http://127.0.0.1:" + server.getPort());
    System.out.flush();
    new CountDownLatch(1).await();
  }
}
