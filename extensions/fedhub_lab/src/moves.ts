/**
 * "Move kernel to centre…": the current notebook's kernel, with its variables, moves to a kernel
 * at another centre (the server's `fedhub/api/kernels/<id>/move`). A notification follows the
 * move's real phases (queued with Slurm's words, saving, copying bytes, restoring, switched) and
 * can cancel it; objects that cannot move are listed before anything switches, and the user
 * chooses. The page keeps the move alive by following it: closed, the server rolls it back.
 */
import { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ISessionContext, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commands';
import { askForCentre, KernelWatch, sessionContextOf } from './kernels';
import { messageOf, requestAPI } from './request';
import { QuotaModel } from './model';

/** Seconds the server waits for this page to ask about the move before rolling it back. */
const HEARTBEAT = 15;

interface IMove {
  id: string;
  status: 'running' | 'choosing' | 'switched' | 'failed' | 'cancelled';
  phase: string;
  message: string;
  progress: { done: number; total: number };
  variables: number;
  unmovable: IUnmovable[];
  words?: string[];
  new_kernel_id: string;
  centre: string;
  error: string;
}

/** A variable that will not move: ``code`` (and ``detail``) say why in words the lab translates;
 * ``reason`` is the kernel's English, shown for a code this lab does not know. */
export interface IUnmovable {
  name: string;
  reason: string;
  code?: string;
  detail?: string;
}

export function unmovableReason(item: IUnmovable, centre: string, trans: TranslationBundle): string {
  switch (item.code) {
    case 'socket':
      return trans.__('an open socket: its connection cannot leave this node');
    case 'generator':
      return trans.__('a running generator or coroutine: its paused frame cannot be copied');
    case 'database':
      return trans.__('a database connection: connect again at the target');
    case 'thread':
      return trans.__('a thread: threads do not move; start it again at the target');
    case 'closed-file':
      return trans.__('a closed file: nothing to reopen');
    case 'file-for-writing':
      return trans.__('a file open for writing: reopening it elsewhere would not be the same file');
    case 'stream':
      return trans.__('a stream without a path (a pipe or an in-memory buffer tied to this process)');
    case 'file-position':
      return trans.__('a file that cannot tell its position');
    case 'not-copyable':
      return trans.__('cannot be copied (%1)', item.detail ?? '');
    case 'file-missing':
      return trans.__('a file whose path %1 does not exist at %2', item.detail ?? '', centre);
    default:
      return item.reason;
  }
}

/** The move's message in the lab's language: the server sends its sentence and values
 * (``words``, from the lab's own catalogue) beside the English. */
export function moveText(move: IMove, trans: TranslationBundle): string {
  return move.words?.length ? trans.__(move.words[0], ...move.words.slice(1)) : move.message;
}

function listOfUnmovable(move: IMove, trans: TranslationBundle): Widget {
  const body = new Widget();
  body.addClass('fedhub-move-unmovable');
  const intro = document.createElement('p');
  intro.textContent = trans.__('These cannot move to %1; after a switch they will not exist there:', move.centre);
  const list = document.createElement('ul');
  for (const item of move.unmovable) {
    const entry = document.createElement('li');
    const name = document.createElement('code');
    name.textContent = item.name;
    entry.append(name, document.createTextNode(trans.__(': %1', unmovableReason(item, move.centre, trans))));
    list.append(entry);
  }
  body.node.append(intro, list);
  return body;
}

function progressOf(move: IMove): number | undefined {
  return move.phase === 'copying' && move.progress.total ? move.progress.done / move.progress.total : undefined;
}

/** Follows one move until it ends; answers true when the kernel switched. */
async function follow(app: JupyterFrontEnd, first: IMove, trans: TranslationBundle): Promise<boolean> {
  let move = first;
  const cancel = async () => {
    const response = await requestAPI(`moves/${move.id}`, { method: 'DELETE' });
    if (!response.ok) {
      Notification.error(trans.__('The move could not be cancelled: %1', await messageOf(response)));
    }
  };
  const cancelAction = { label: trans.__('Cancel move'), callback: () => void cancel() };
  const notice = Notification.emit(moveText(move, trans) || trans.__('Moving the kernel'), 'in-progress', {
    autoClose: false,
    actions: [cancelAction]
  });
  let asked = false;
  /** One look at the move: true or false once it has ended (switched or not), null while it runs. */
  const look = async (): Promise<boolean | null> => {
    const response = await requestAPI(`moves/${move.id}`);
    if (!response.ok) {
      Notification.update({
        id: notice,
        message: trans.__('Lost the move: %1', await messageOf(response)),
        type: 'error',
        autoClose: false
      });
      return false;
    }
    move = await response.json();
    if (move.status === 'choosing' && !asked) {
      asked = true;
      void showDialog({
        title: trans.__('Move the kernel to %1 without these?', move.centre),
        body: listOfUnmovable(move, trans),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Cancel move') }),
          Dialog.warnButton({ label: trans.__('Switch anyway') })
        ]
      }).then(result =>
        requestAPI(`moves/${move.id}/choice`, {
          method: 'POST',
          body: JSON.stringify({ switch: result.button.accept })
        })
      );
    }
    if (move.status === 'switched') {
      Notification.update({
        id: notice,
        type: 'success',
        autoClose: 8000,
        actions: [],
        message:
          trans._n(
            'Kernel moved to %2 with %1 variable',
            'Kernel moved to %2 with %1 variables',
            move.variables,
            move.centre
          ) +
          (move.unmovable.length ? ' ' + trans.__('(not moved: %1)', move.unmovable.map(u => u.name).join(', ')) : '')
      });
      await app.serviceManager.kernelspecs.refreshSpecs(); // the target's kernelspec is new
      await app.serviceManager.sessions.refreshRunning(); // every notebook and console of the kernel
      return true;
    }
    if (move.status === 'failed' || move.status === 'cancelled') {
      Notification.update({
        id: notice,
        message: moveText(move, trans),
        type: move.status === 'failed' ? 'error' : 'info',
        autoClose: move.status === 'failed' ? false : 8000,
        actions: []
      });
      return false;
    }
    Notification.update({
      id: notice,
      message: moveText(move, trans),
      type: 'in-progress',
      progress: progressOf(move),
      autoClose: false,
      actions: [cancelAction]
    });
    return null;
  };
  return new Promise<boolean>(resolve => {
    const poll = new Poll({
      name: 'fedhub-lab:move',
      frequency: { interval: 500, backoff: false },
      // never on standby: the server rolls the move back when the page stops asking (HEARTBEAT)
      standby: 'never',
      factory: async () => {
        let ended: boolean | null;
        try {
          ended = await look();
        } catch (e) {
          Notification.update({
            id: notice,
            message: trans.__('Lost the move: %1', String(e)),
            type: 'error',
            autoClose: false
          });
          ended = false;
        }
        if (ended !== null) {
          poll.dispose();
          resolve(ended);
        }
      }
    });
  });
}

/** Ask where to, start the move, follow it. */
export async function moveKernel(
  app: JupyterFrontEnd,
  context: ISessionContext | null,
  trans: TranslationBundle,
  suggested?: string
): Promise<void> {
  const title = trans.__('Move kernel to centre');
  const kernel = context?.session?.kernel;
  if (!context || !kernel) {
    await showErrorMessage(title, trans.__('Open a notebook or console with a running kernel first.'));
    return;
  }
  const response = await askForCentre(
    title,
    trans.__('Move'),
    options =>
      requestAPI(`kernels/${kernel.id}/move`, {
        method: 'POST',
        body: JSON.stringify({ ...options, heartbeat: HEARTBEAT, on_unmovable: 'ask' })
      }),
    trans,
    suggested ? { centre: suggested } : null
  );
  if (response) {
    await follow(app, await response.json(), trans);
  }
}

/**
 * Moves FedHub suggests: when the allocation at the centre of the current notebook's kernel
 * reaches its critical level, or the kernel's job has less than `walltimeMinutes` left, a
 * warning offers "Move kernel to <centre>", the centre where such a kernel would start soonest
 * (the hub's "any centre" placement). Each reason is offered once per kernel.
 */
export class MoveAdvisor {
  constructor(app: JupyterFrontEnd, shell: ILabShell, model: QuotaModel, watch: KernelWatch, trans: TranslationBundle) {
    this._trans = trans;
    this._app = app;
    this._shell = shell;
    this._model = model;
    this._watch = watch;
    model.changed.connect(() => void this.check());
    watch.refreshed.connect(() => void this.check());
    shell.currentChanged.connect(() => void this.check());
  }

  /** Minutes before a kernel's walltime ends at which a move is offered (0: never). */
  walltimeMinutes = 15;

  async check(): Promise<void> {
    const kernel = sessionContextOf(this._shell.currentWidget)?.session?.kernel;
    if (!kernel) {
      return;
    }
    const spec = this._app.serviceManager.kernelspecs.specs?.kernelspecs[kernel.name];
    const fedhub = (spec?.metadata as { fedhub?: { centre?: string; centre_name?: string } } | undefined)?.fedhub;
    const centre = fedhub?.centre ?? (await this._serverCentre());
    if (!centre) {
      return;
    }
    const state = this._model.state;
    const quota = state.kind === 'figures' ? state.envelope.quota.centres.find(c => c.centre === centre) : undefined;
    if (quota && (quota.level === 'critical' || quota.level === 'used-up')) {
      const pct = Math.round(quota.core_hours?.percent ?? 100);
      await this._offer(
        `quota:${kernel.id}:${quota.level}`,
        centre,
        this._trans.__('You have used %1%% of your allocation at %2, where this kernel runs.', pct, quota.name)
      );
    }
    const record = this._watch.records.find(r => r.kernel_id === kernel.id && r.ends_at);
    if (record?.ends_at && this.walltimeMinutes > 0) {
      const left = (Date.parse(record.ends_at) - Date.now()) / 60000;
      if (left < this.walltimeMinutes) {
        const at = new Date(record.ends_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        await this._offer(
          `walltime:${kernel.id}`,
          centre,
          this._trans.__(
            "This kernel's job (%1) reaches its walltime in %2 min, at %3.",
            record.job_id,
            Math.max(0, Math.floor(left)),
            at
          )
        );
      }
    }
  }

  private async _offer(key: string, centre: string, why: string): Promise<void> {
    if (this._offered.has(key)) {
      return;
    }
    this._offered.add(key);
    const response = await requestAPI(`kernel-centres?suggest_from=${encodeURIComponent(centre)}`);
    const suggested = response.ok ? (await response.json()).suggested : null;
    if (!suggested) {
      Notification.warning(this._trans.__('%1 No other centre can take it now.', why), { autoClose: false });
      return;
    }
    const offer = this._trans.__('Move it, with its variables, to %1 (%2)?', suggested.name, suggested.why);
    Notification.warning(`${why} ${offer}`, {
      autoClose: false,
      actions: [
        {
          label: this._trans.__('Move kernel to %1', suggested.name),
          callback: () => void this._app.commands.execute(CommandIDs.moveKernel, { centre: suggested.id })
        }
      ]
    });
  }

  private async _serverCentre(): Promise<string> {
    if (this._server === undefined) {
      const response = await requestAPI('kernel-centres');
      this._server = response.ok ? ((await response.json()).server_centre?.id ?? '') : '';
    }
    return this._server ?? '';
  }

  private _app: JupyterFrontEnd;
  private _trans: TranslationBundle;
  private _shell: ILabShell;
  private _model: QuotaModel;
  private _watch: KernelWatch;
  private _offered = new Set<string>();
  private _server: string | undefined;
}

/** The "Move kernel to centre…" command (the status bar item, the palette and the advisor run it). */
export function addMoveCommand(app: JupyterFrontEnd, shell: ILabShell, trans: TranslationBundle): void {
  app.commands.addCommand(CommandIDs.moveKernel, {
    label: trans.__('Move kernel to centre…'),
    caption: trans.__("Move this notebook's running kernel, with its variables, to another centre"),
    isEnabled: () => !!sessionContextOf(shell.currentWidget)?.session?.kernel,
    execute: args => moveKernel(app, sessionContextOf(shell.currentWidget), trans, args.centre as string | undefined)
  });
}
