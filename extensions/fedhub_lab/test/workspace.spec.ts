/**
 * What the "Files at other centres" panel concludes from the hub's listing: which files a centre
 * holds, which are newer there than here (a "Copy here" button), and sizes as the hub says them.
 */
import { heldAt, IWorkspace, newerThanHere, sizeText } from '../src/workspaceModel';

const workspace: IWorkspace = {
  centres: [
    { id: 'alpha', name: 'Alpha' },
    { id: 'gamma', name: 'Gamma' }
  ],
  here: 'gamma',
  browser_prefix: '',
  files: [
    { path: 'a.ipynb', size: 13, mtime: 1, centre: 'alpha', at: { alpha: 'newest', gamma: 'older' }, large: false },
    { path: 'big.bin', size: 2e8, mtime: 1, centre: 'alpha', at: { alpha: 'newest' }, large: true },
    { path: 'same.txt', size: 5, mtime: 1, centre: 'alpha', at: { alpha: 'newest', gamma: 'newest' }, large: false },
    { path: 'only-here.txt', size: 5, mtime: 1, centre: 'gamma', at: { gamma: 'newest' }, large: false }
  ]
};

describe('the workspace panel', () => {
  it('lists what a centre holds and offers to copy only what is newer there', () => {
    expect(heldAt(workspace, 'alpha').map(f => f.path)).toEqual(['a.ipynb', 'big.bin', 'same.txt']);
    const newer = heldAt(workspace, 'alpha').filter(f => newerThanHere(f, 'alpha', 'gamma'));
    expect(newer.map(f => f.path)).toEqual(['a.ipynb', 'big.bin']);
  });

  it('says sizes as the hub does', () => {
    expect(sizeText(999)).toBe('999 B');
    expect(sizeText(52_428_800)).toBe('52 MB');
    expect(sizeText(2_500_000)).toBe('2.5 MB');
    expect(sizeText(2e9)).toBe('2.0 GB');
  });
});
