/**
 * Files at other centres (issue 25): a sidebar panel lists the user's workspace at every other
 * centre as the hub last recorded it (sizes, times, which copy is newest, large files left
 * there), with "Copy here" and "Copy to <centre>…" per file or folder; the file browser's context
 * menu copies its selection to another centre. Each copy is followed in a notification with its
 * progress and a Cancel button. The hub does the copying (the user's own logins at both ends);
 * this page only asks and follows, through this server (server/workspace.py).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commands';
import { el } from './dom';
import { messageOf, requestAPI } from './request';
import { heldAt, ITransfer, IWorkspace, IWorkspaceCentre, newerThanHere, sizeText } from './workspaceModel';

const SHOWN_PER_CENTRE = 200; // a long listing ends with "and N more"

function button(label: string, className: string, onClick: () => void, title = ''): HTMLButtonElement {
  const node = el('button', `jp-Button jp-mod-styled jp-mod-minimal ${className}`, label) as HTMLButtonElement;
  node.title = title;
  node.addEventListener('click', onClick);
  return node;
}

/** Follow a copy in a notification (progress, Cancel) until it ends; resolves with its end. */
export async function copyFiles(
  trans: TranslationBundle,
  names: Record<string, string>,
  from: string,
  to: string,
  paths: string[]
): Promise<ITransfer | null> {
  const response = await requestAPI('transfers', { method: 'POST', body: JSON.stringify({ from, to, paths }) });
  if (response.status !== 202) {
    Notification.error(trans.__('Could not copy: %1', await messageOf(response)), { autoClose: false });
    return null;
  }
  let current = (await response.json()) as ITransfer;
  const route = trans.__('from %1 to %2', names[from] ?? from, names[to] ?? to);
  const cancel = async () => {
    const answer = await requestAPI(`transfers/${current.id}`, { method: 'DELETE' });
    if (!answer.ok) {
      Notification.error(trans.__('The copy could not be cancelled: %1', await messageOf(answer)));
    }
  };
  const notice = Notification.emit(trans.__('Copying %1', route), 'in-progress', {
    autoClose: false,
    actions: [{ label: trans.__('Cancel'), callback: () => void cancel() }]
  });
  document.body.dataset.fedhubTransfer = current.status;
  while (current.status === 'queued' || current.status === 'copying') {
    await new Promise(resolve => setTimeout(resolve, 700));
    const look = await requestAPI(`transfers/${current.id}`).catch(() => null);
    if (!look || !look.ok) {
      continue;
    }
    current = (await look.json()) as ITransfer;
    document.body.dataset.fedhubTransfer = current.status;
    const progress = current.total ? Math.min(1, current.bytes / current.total) : undefined;
    const message =
      current.status === 'copying' && current.total
        ? trans.__(
            'Copying %1: %2 of %3 (%4%%)',
            route,
            sizeText(current.bytes),
            sizeText(current.total),
            Math.round((progress ?? 0) * 100)
          )
        : trans.__('Copying %1', route);
    Notification.update({ id: notice, message, type: 'in-progress', autoClose: false, progress });
  }
  const ended: Record<string, [string, 'success' | 'error' | 'info']> = {
    done: [
      trans._n('Copied %1 file (%2) %3', 'Copied %1 files (%2) %3', current.files, sizeText(current.bytes), route),
      'success'
    ],
    failed: [trans.__('The copy %1 failed: %2', route, current.reason), 'error'],
    cancelled: [trans.__('The copy %1 was cancelled; no half-written file was kept', route), 'info']
  };
  const [message, type] = ended[current.status];
  Notification.update({ id: notice, message, type, autoClose: type === 'error' ? false : 8000, actions: [] });
  return current;
}

class TargetChooser extends Widget {
  constructor(centres: IWorkspaceCentre[], trans: TranslationBundle) {
    super();
    this.addClass('fedhub-copy-target');
    const label = el('label', '', trans.__('Copy to'));
    this._select = document.createElement('select');
    this._select.className = 'jp-mod-styled fedhub-copy-target-select';
    for (const centre of centres) {
      const option = document.createElement('option');
      option.value = centre.id;
      option.textContent = centre.name;
      this._select.appendChild(option);
    }
    label.appendChild(this._select);
    this.node.appendChild(label);
  }

  getValue(): string {
    return this._select.value;
  }

  private _select: HTMLSelectElement;
}

async function chooseTarget(trans: TranslationBundle, centres: IWorkspaceCentre[], paths: string[]) {
  const result = await showDialog({
    title: trans._n('Copy %1 item to another centre', 'Copy %1 items to another centre', paths.length),
    body: new TargetChooser(centres, trans),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Copy') })]
  });
  return result.button.accept ? result.value : null;
}

/** The hub's listing; ``live``: read at every centre now (slower), not as last recorded. */
export async function fetchWorkspace(live = false): Promise<IWorkspace | string> {
  const response = await requestAPI('workspace', live ? { method: 'POST' } : {});
  if (!response.ok) {
    return await messageOf(response);
  }
  return (await response.json()) as IWorkspace;
}

export class WorkspacePanel extends Widget {
  constructor(
    private _app: JupyterFrontEnd,
    private _trans: TranslationBundle
  ) {
    super();
    this.id = 'fedhub-workspace-panel';
    this.title.label = _trans.__('Centres');
    this.title.caption = _trans.__('Your files at other centres');
    this.addClass('fedhub-workspace-panel');
  }

  get workspace(): IWorkspace | null {
    return this._workspace;
  }

  async refresh(live = false): Promise<void> {
    if (live) {
      this._reading = true;
      this.update();
    }
    const answer = await fetchWorkspace(live);
    this._reading = false;
    if (typeof answer === 'string') {
      this._problem = answer;
    } else {
      this._workspace = answer;
      this._problem = '';
    }
    this.update();
  }

  protected onAfterAttach(): void {
    void this.refresh();
  }

  protected onUpdateRequest(): void {
    const trans = this._trans;
    const node = this.node;
    node.textContent = '';
    const head = el('div', 'fedhub-workspace-head');
    head.appendChild(el('h2', 'fedhub-workspace-title', trans.__('Your files at other centres')));
    const refresh = button(
      this._reading ? trans.__('Reading every centre…') : trans.__('Refresh'),
      'fedhub-workspace-refresh',
      () => void this.refresh(true),
      trans.__('Read your workspace at every centre now')
    );
    refresh.disabled = this._reading;
    head.appendChild(refresh);
    node.appendChild(head);
    if (this._problem) {
      node.appendChild(el('p', 'fedhub-workspace-problem', trans.__('Not available: %1', this._problem)));
      return;
    }
    const workspace = this._workspace;
    if (!workspace) {
      node.appendChild(el('p', 'fedhub-workspace-note', trans.__('Reading…')));
      return;
    }
    node.appendChild(
      el(
        'p',
        'fedhub-workspace-note',
        trans.__('As the hub last recorded them: when a server stops, and every few minutes while one runs.')
      )
    );
    for (const problem of workspace.problems ?? []) {
      node.appendChild(el('p', 'fedhub-workspace-problem', problem));
    }
    const names = Object.fromEntries(workspace.centres.map(c => [c.id, c.name]));
    for (const centre of workspace.centres) {
      if (centre.id === workspace.here) {
        continue;
      }
      node.appendChild(this._section(workspace, centre, names));
    }
  }

  private _section(workspace: IWorkspace, centre: IWorkspaceCentre, names: Record<string, string>): HTMLElement {
    const trans = this._trans;
    const section = el('section', 'fedhub-workspace-centre');
    section.dataset.centre = centre.id;
    const files = heldAt(workspace, centre.id);
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    section.appendChild(el('h3', 'fedhub-workspace-centre-name', centre.name));
    section.appendChild(
      el(
        'div',
        'fedhub-workspace-summary',
        files.length
          ? trans._n('%1 file, %2', '%1 files, %2', files.length, sizeText(bytes))
          : trans.__('Nothing recorded here yet')
      )
    );
    const others = workspace.centres.filter(c => c.id !== centre.id);
    const list = el('ul', 'fedhub-workspace-files');
    for (const file of files.slice(0, SHOWN_PER_CENTRE)) {
      const row = el('li', 'fedhub-workspace-file');
      row.dataset.path = file.path;
      row.appendChild(el('span', 'fedhub-workspace-path', file.path));
      const when = new Date(file.mtime * 1000).toLocaleString();
      row.appendChild(el('span', 'fedhub-workspace-size', `${sizeText(file.size)} · ${when}`));
      if (newerThanHere(file, centre.id, workspace.here)) {
        const badge =
          file.large && file.at[workspace.here] === undefined ? trans.__('large: left there') : trans.__('newer there');
        row.appendChild(el('span', 'fedhub-workspace-badge', badge));
        row.appendChild(
          button(
            trans.__('Copy here'),
            'fedhub-copy-here',
            () => void this._copy(names, centre.id, workspace.here, [file.path])
          )
        );
      }
      row.appendChild(
        button(trans.__('Copy to…'), 'fedhub-copy-to', () => void this._copyTo(names, centre.id, others, [file.path]))
      );
      list.appendChild(row);
    }
    section.appendChild(list);
    if (files.length > SHOWN_PER_CENTRE) {
      section.appendChild(el('div', 'fedhub-workspace-more', trans.__('and %1 more', files.length - SHOWN_PER_CENTRE)));
    }
    return section;
  }

  private async _copyTo(names: Record<string, string>, from: string, others: IWorkspaceCentre[], paths: string[]) {
    const to = await chooseTarget(this._trans, others, paths);
    if (to) {
      await this._copy(names, from, to, paths);
    }
  }

  private async _copy(names: Record<string, string>, from: string, to: string, paths: string[]) {
    const ended = await copyFiles(this._trans, names, from, to, paths);
    if (
      ended?.status === 'done' &&
      to === this._workspace?.here &&
      this._app.commands.hasCommand('filebrowser:refresh')
    ) {
      void this._app.commands.execute('filebrowser:refresh');
    }
    await this.refresh();
  }

  private _workspace: IWorkspace | null = null;
  private _problem = '';
  private _reading = false;
}

/** The file browser's "Copy to another centre…": its selected files and folders, from here. */
export function addCopyToCommand(
  app: JupyterFrontEnd,
  trans: TranslationBundle,
  panel: WorkspacePanel,
  selected: () => string[]
): void {
  app.commands.addCommand(CommandIDs.copyToCentre, {
    label: trans.__('Copy to Another Centre…'),
    caption: trans.__('Copy the selected files or folders to your workspace at another centre'),
    isVisible: () => panel.workspace === null || panel.workspace.browser_prefix !== null,
    execute: async () => {
      if (!panel.workspace) {
        await panel.refresh();
      }
      const workspace = panel.workspace;
      if (!workspace || workspace.browser_prefix === null) {
        Notification.error(trans.__('Your workspace is not in this file browser; nothing can be copied from here'));
        return;
      }
      const prefix = workspace.browser_prefix;
      const inside = selected().filter(p => prefix === '' || p.startsWith(prefix));
      if (!inside.length) {
        Notification.warning(trans.__('Only files in your workspace (%1) follow you between centres', prefix || '/'));
        return;
      }
      const paths = inside.map(p => p.slice(prefix.length));
      const others = workspace.centres.filter(c => c.id !== workspace.here);
      const to = await chooseTarget(trans, others, paths);
      if (!to) {
        return;
      }
      const names = Object.fromEntries(workspace.centres.map(c => [c.id, c.name]));
      await copyFiles(trans, names, workspace.here, to, paths);
      await panel.refresh();
    }
  });
}
