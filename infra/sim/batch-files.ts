/**
 * The simulator's Files API store (/v1/files): batch input files uploaded by clients and the
 * output and error files batches write. In memory, per server; ids count up from the server's
 * start (`file-sim-000001`, ...), so a run is reproducible.
 */
import type { FileObject } from 'openai/resources/files';
import { HttpError } from './http';

export type FilePurpose = FileObject['purpose'];

/** Purposes a client may upload with (the others are written by the server). */
export const UPLOAD_PURPOSES: readonly FilePurpose[] = [
  'assistants',
  'batch',
  'fine-tune',
  'vision',
  'user_data',
];

/** The wire shape, with OpenAI's nulls for the optional fields. */
export type FileWire = Omit<FileObject, 'expires_at' | 'status_details'> & {
  expires_at: number | null;
  status_details: string | null;
};

interface StoredFile {
  seq: number;
  file: FileWire;
  content: string;
}

export interface Page<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** One page of `items` (already in the order asked for) after the item with id `after`. */
export function pageOf<T extends { id: string }>(
  items: T[],
  limit: number,
  after: string | undefined,
): Page<T> {
  const start = after === undefined ? 0 : items.findIndex((x) => x.id === after) + 1;
  // An unknown cursor gives an empty page rather than the first one, so a client never loops.
  const rest = after !== undefined && start === 0 ? [] : items.slice(start);
  const data = rest.slice(0, limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: rest.length > data.length,
  };
}

export const noSuchFile = (id: string) =>
  new HttpError(404, `No such File object: ${id}`, 'invalid_request_error', null);

export class FileStore {
  private files = new Map<string, StoredFile>();
  private seq = 0;

  add(filename: string, purpose: FilePurpose, content: string): FileWire {
    const seq = ++this.seq;
    const file: FileWire = {
      id: `file-sim-${String(seq).padStart(6, '0')}`,
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: Math.floor(Date.now() / 1000),
      filename,
      purpose,
      status: 'processed',
      expires_at: null,
      status_details: null,
    };
    this.files.set(file.id, { seq, file, content });
    return { ...file };
  }

  /** The file and its content; 404 when there is none with that id. */
  get(id: string): { file: FileWire; content: string } {
    const f = this.files.get(id);
    if (!f) throw noSuchFile(id);
    return { file: { ...f.file }, content: f.content };
  }

  delete(id: string): { id: string; object: 'file'; deleted: true } {
    if (!this.files.delete(id)) throw noSuchFile(id);
    return { id, object: 'file', deleted: true };
  }

  list(q: { purpose?: string; order: 'asc' | 'desc'; limit: number; after?: string }): Page<FileWire> {
    const all = [...this.files.values()]
      .filter((f) => q.purpose === undefined || f.file.purpose === q.purpose)
      .sort((a, b) => (q.order === 'asc' ? a.seq - b.seq : b.seq - a.seq))
      .map((f) => ({ ...f.file }));
    return pageOf(all, q.limit, q.after);
  }
}
