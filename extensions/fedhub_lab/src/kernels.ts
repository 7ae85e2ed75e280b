/**
 * Kernels at the federation's centres, in JupyterLab:
 * - a status bar item naming the centre of the current notebook's kernel ("Kernel at Beta");
 * - while a kernel's job waits, a notification in Slurm's words with "Cancel wait" (its job is
 *   cancelled); a kernel whose job Slurm ended says so with the reason;
 * - the command "Kernel at another centre…": centre, partition, cores, memory, GPUs and
 *   walltime, checked by the hub like a spawn, then the current notebook switches to it.
 * All of it through the server's `fedhub/api/...` handlers; hidden when the server is not FedHub's.
 */
import { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ISessionContext, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commands';
import { KernelRequestForm } from './kernelForm';
import { FormValues, ICentreChoice, IOptionField, optionsOf } from './kernelOptions';
import { messageOf, requestAPI } from './request';

export interface IKernelRecord {
  id: string;
  centre: string;
  status: string;
  message: string;
  job_id: string;
  kernel_id: string; // this server's id of the kernel ('' when not started here)
  move_target?: boolean; // a move is starting it: the move's own notification says how it goes
  ends_at?: string; // when Slurm's walltime ends the job
}

const WAITING = ['submitted', 'pending', 'starting', 'restarting'];

/** Follows this server's kernels at centres: notifications while they wait, and when they end. */
export class KernelWatch {
  constructor(trans: TranslationBundle) {
    this._trans = trans;
    this._poll = new Poll({
      auto: true,
      factory: () => this.refresh(),
      frequency: { interval: 2000, backoff: true, max: 30000 },
      name: 'fedhub-lab:kernels',
      standby: 'when-hidden'
    });
  }

  get records(): IKernelRecord[] {
    return this._records;
  }

  async refresh(): Promise<void> {
    const response = await requestAPI('kernels');
    if (response.status === 404) {
      this._poll.dispose(); // not a FedHub server: nothing to follow
      return;
    }
    if (!response.ok) {
      throw new Error(await messageOf(response));
    }
    this._records = (await response.json()).kernels as IKernelRecord[];
    this._refreshed.emit(undefined);
    const seen = new Set<string>();
    for (const record of this._records) {
      seen.add(record.id);
      this._show(record);
    }
    for (const [id, notice] of this._notices) {
      if (!seen.has(id)) {
        Notification.dismiss(notice);
        this._notices.delete(id);
      }
    }
  }

  private _show(record: IKernelRecord): void {
    const notice = this._notices.get(record.id);
    if (record.move_target) {
      if (notice) {
        Notification.dismiss(notice);
        this._notices.delete(record.id);
      }
      return;
    }
    if (WAITING.includes(record.status)) {
      const options = {
        type: 'in-progress' as const,
        autoClose: false as const,
        actions: [
          {
            label: this._trans.__('Cancel wait'),
            caption: this._trans.__('Cancel job %1', record.job_id),
            callback: () => void this.cancel(record)
          }
        ]
      };
      if (notice) {
        Notification.update({ id: notice, message: record.message, ...options });
      } else {
        this._notices.set(record.id, Notification.emit(record.message, 'in-progress', options));
      }
    } else if (record.status === 'ended') {
      if (!this._ended.has(record.id)) {
        this._ended.add(record.id);
        if (notice) {
          Notification.dismiss(notice);
          this._notices.delete(record.id);
        }
        Notification.error(record.message, { autoClose: false });
      }
    } else if (notice) {
      Notification.dismiss(notice);
      this._notices.delete(record.id);
    }
  }

  async cancel(record: IKernelRecord): Promise<void> {
    const response = await requestAPI(`kernels/${record.id}`, { method: 'DELETE' });
    if (!response.ok) {
      Notification.error(this._trans.__('Could not cancel job %1: %2', record.job_id, await messageOf(response)));
      return;
    }
    Notification.info(this._trans.__('Cancelled the wait for a kernel (job %1)', record.job_id), { autoClose: 5000 });
    await this._poll.refresh();
  }

  /** After every look at the hub's records. */
  get refreshed(): ISignal<this, void> {
    return this._refreshed;
  }

  /** Look now (a kernel was just asked for). */
  async poke(): Promise<void> {
    await this._poll.refresh();
  }

  private _poll: Poll;
  private _trans: TranslationBundle;
  private _refreshed = new Signal<this, void>(this);
  private _records: IKernelRecord[] = [];
  private _notices = new Map<string, string>();
  private _ended = new Set<string>();
}

export function sessionContextOf(widget: Widget | null): ISessionContext | null {
  const candidate = widget as unknown as { sessionContext?: ISessionContext } | null;
  return candidate?.sessionContext ?? null;
}

/** "Kernel at Beta" for the current notebook or console, when its kernel is FedHub's. */
export class KernelCentreStatus extends Widget {
  constructor(app: JupyterFrontEnd, shell: ILabShell, onClick: () => void, trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.id = 'fedhub-kernel-centre';
    this.addClass('fedhub-kernel-centre');
    this._app = app;
    this.node.addEventListener('click', onClick);
    app.serviceManager.kernelspecs.specsChanged.connect(() => this._update());
    shell.currentChanged.connect(() => this._follow(sessionContextOf(shell.currentWidget)));
    this._follow(sessionContextOf(shell.currentWidget));
    // where the server runs: a kernel beside it is "at" that centre too (not a FedHub server: 404)
    void requestAPI('kernel-centres')
      .then(async response => {
        if (response.ok) {
          this._serverCentre = (await response.json()).server_centre?.name ?? '';
          this._update();
        }
      })
      .catch(() => undefined);
  }

  get isActive(): boolean {
    return this.node.textContent !== '';
  }

  private _follow(context: ISessionContext | null): void {
    if (this._context) {
      this._context.kernelChanged.disconnect(this._update, this);
      this._context.statusChanged.disconnect(this._update, this);
    }
    this._context = context;
    if (context) {
      context.kernelChanged.connect(this._update, this);
      context.statusChanged.connect(this._update, this);
    }
    this._update();
  }

  private _update(): void {
    const name = this._context?.session?.kernel?.name ?? this._context?.kernelPreference.name ?? '';
    const spec = name ? this._app.serviceManager.kernelspecs.specs?.kernelspecs[name] : undefined;
    const fedhub = (spec?.metadata as { fedhub?: { centre_name?: string } } | undefined)?.fedhub;
    const trans = this._trans;
    if (!fedhub && spec && this._serverCentre && this._context?.session?.kernel) {
      this.node.textContent = trans.__('Kernel at %1', this._serverCentre);
      this.node.title = trans.__(
        "This notebook's kernel runs beside the server at %1. Click to move it",
        this._serverCentre
      );
    } else if (!fedhub) {
      this.node.textContent = '';
    } else {
      const centre = fedhub.centre_name ?? '';
      const waiting: Record<string, string> = {
        starting: trans.__('starting'),
        initializing: trans.__('initializing'),
        restarting: trans.__('restarting')
      };
      const status = waiting[this._context?.kernelDisplayStatus ?? ''];
      this.node.textContent = status ? trans.__('Kernel at %1 (%2)', centre, status) : trans.__('Kernel at %1', centre);
      this.node.title = trans.__("This notebook's kernel runs at %1 as a Slurm job. Click to move it", centre);
    }
    this._activeChanged.emit(undefined);
  }

  /** Tells the status bar to show or hide the item. */
  get activeChanged(): ISignal<this, void> {
    return this._activeChanged;
  }

  private _activeChanged = new Signal<this, void>(this);

  private _app: JupyterFrontEnd;
  private _trans: TranslationBundle;
  private _context: ISessionContext | null = null;
  private _serverCentre = '';
}

/**
 * Ask for a centre and resources until the server takes them: the centres and the option fields
 * come from the hub (centres that cannot be chosen greyed, with the reason); `submit` posts the
 * options and the form comes back, with what was typed, when the hub says no. Answers the
 * accepted response.
 */
export async function askForCentre(
  title: string,
  accept: string,
  submit: (options: Record<string, string | number>) => Promise<Response>,
  trans: TranslationBundle,
  values: FormValues | null = null
): Promise<Response | null> {
  const listed = await requestAPI('kernel-centres');
  if (!listed.ok) {
    await showErrorMessage(title, await messageOf(listed));
    return null;
  }
  const { centres, fields } = (await listed.json()) as { centres: ICentreChoice[]; fields: IOptionField[] };
  for (;;) {
    const result = await showDialog({
      title,
      body: new KernelRequestForm(centres, fields, trans, values),
      buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.okButton({ label: accept })]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    values = result.value;
    const response = await submit(optionsOf(values, fields));
    if (response.ok) {
      return response;
    }
    await showErrorMessage(title, await messageOf(response)); // then the form again
  }
}

/** "Kernel at another centre…": ask, let the hub check, switch the current notebook's kernel. */
export async function chooseKernelAtCentre(
  app: JupyterFrontEnd,
  shell: ILabShell,
  watch: KernelWatch,
  trans: TranslationBundle
): Promise<void> {
  const title = trans.__('Kernel at another centre');
  const context = sessionContextOf(shell.currentWidget);
  if (!context) {
    await showErrorMessage(title, trans.__('Open a notebook or console first.'));
    return;
  }
  const response = await askForCentre(
    title,
    trans.__('Start kernel'),
    options => requestAPI('kernelspecs', { method: 'POST', body: JSON.stringify(options) }),
    trans
  );
  if (!response) {
    return;
  }
  const spec = await response.json();
  await app.serviceManager.kernelspecs.refreshSpecs();
  void watch.poke();
  await context.changeKernel({ name: spec.name });
}

export function activateKernels(
  app: JupyterFrontEnd,
  shell: ILabShell,
  statusBar: IStatusBar | null,
  trans: TranslationBundle
): KernelWatch {
  const watch = new KernelWatch(trans);
  app.commands.addCommand(CommandIDs.kernelAtCentre, {
    label: trans.__('Kernel at another centre…'),
    caption: trans.__("Run this notebook's kernel as a Slurm job at another centre of the federation"),
    execute: () => chooseKernelAtCentre(app, shell, watch, trans)
  });
  if (statusBar) {
    const item = new KernelCentreStatus(app, shell, () => void app.commands.execute(CommandIDs.moveKernel), trans);
    statusBar.registerStatusItem('fedhub-lab:kernel-centre', {
      item,
      align: 'left',
      rank: 60,
      isActive: () => item.isActive,
      activeStateChanged: item.activeChanged
    });
  }
  return watch;
}
