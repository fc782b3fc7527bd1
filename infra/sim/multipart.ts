/**
 * A minimal multipart/form-data reader for POST /v1/files: the openai client uploads a file
 * and its `purpose` as form fields. Text only (JSONL files), which is all the simulator
 * stores; the whole body is already in memory (http.ts caps its size).
 */
import { badRequest } from './http';

export interface FormPart {
  name: string;
  /** Set for file fields. */
  filename?: string;
  data: string;
}

function dispositionParam(header: string, key: string): string | undefined {
  const m = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(header);
  if (m?.[1] !== undefined) return m[1].replace(/\\(.)/g, '$1');
  const bare = new RegExp(`;\\s*${key}=([^;\\s]+)`, 'i').exec(header);
  return bare?.[1];
}

/** The parts of a multipart/form-data `body` sent with this `content-type` header. */
export function parseMultipart(body: string, contentType: string): FormPart[] {
  if (!/^multipart\/form-data/i.test(contentType))
    throw badRequest(`Expected a multipart/form-data body, got '${contentType || 'none'}'.`);
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw badRequest('The multipart/form-data body has no boundary.');
  const parts: FormPart[] = [];
  // Each part is "\r\n<headers>\r\n\r\n<data>\r\n" between two delimiters; the last delimiter ends in "--".
  for (const segment of body.split(`--${boundary}`).slice(1)) {
    if (segment.startsWith('--')) break;
    const part = segment.startsWith('\r\n') ? segment.slice(2) : segment;
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) continue;
    const headers = part.slice(0, headerEnd).split('\r\n');
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? '';
    const name = dispositionParam(disposition, 'name');
    if (name === undefined) continue;
    let data = part.slice(headerEnd + 4);
    if (data.endsWith('\r\n')) data = data.slice(0, -2);
    const filename = dispositionParam(disposition, 'filename');
    parts.push(filename === undefined ? { name, data } : { name, filename, data });
  }
  return parts;
}
