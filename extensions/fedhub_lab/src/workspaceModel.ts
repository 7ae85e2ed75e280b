/**
 * The user's workspace at every centre as the hub lists it (GET fedhub/api/workspace), a copy's
 * record, and what the panel concludes from them (no DOM here: the unit tests run it in node).
 */
export interface IWorkspaceFile {
  path: string;
  size: number;
  mtime: number;
  centre: string; // holding the newest version
  at: Record<string, 'newest' | 'older'>;
  large: boolean;
}

export interface IWorkspaceCentre {
  id: string;
  name: string;
}

export interface IWorkspace {
  centres: IWorkspaceCentre[];
  files: IWorkspaceFile[];
  here: string;
  browser_prefix: string | null;
  problems?: string[]; // after a live read: a centre that did not answer
}

export interface ITransfer {
  id: string;
  from: string;
  to: string;
  status: 'queued' | 'copying' | 'done' | 'failed' | 'cancelled';
  bytes: number;
  total: number;
  files: number;
  reason: string;
}

/** "52 MB": sizes as the hub's progress page says them. */
export function sizeText(n: number): string {
  for (const [unit, size] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['kB', 1e3]
  ] as [string, number][]) {
    if (n >= size) {
      return `${(n / size).toFixed(n < 10 * size ? 1 : 0)} ${unit}`;
    }
  }
  return `${n} B`;
}

/** The files a centre holds (any version), and which of them are newer there than here. */
export function heldAt(workspace: IWorkspace, centre: string): IWorkspaceFile[] {
  return workspace.files.filter(f => f.at[centre] !== undefined);
}

export function newerThanHere(file: IWorkspaceFile, centre: string, here: string): boolean {
  return file.at[centre] === 'newest' && file.at[here] !== 'newest';
}
