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
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commands';
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

interface IPartition {
  name: string;
  max_cores: number;
  max_memory_mb: number;
  max_walltime_s: number;
  gpus: { type: string; max: number }[];
}

export interface ICentreChoice {
  id: string;
  name: string;
  available: boolean;
  reason: string;
  partitions: IPartition[];
  /** The projects the user may charge there (empty: the centre offers no choice). */
  projects: string[];
  defaults: { partition: string; project?: string; cores: number; memory_mb: number; walltime_s: number };
}

const WAITING = ['submitted', 'pending', 'starting', 'restarting'];

/** Follows this server's kernels at centres: notifications while they wait, and when they end. */
export class KernelWatch {
  constructor() {
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
            label: 'Cancel wait',
            caption: `Cancel job ${record.job_id}`,
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
      Notification.error(`Could not cancel job ${record.job_id}: ${await messageOf(response)}`);
      return;
    }
    Notification.info(`Cancelled the wait for a kernel (job ${record.job_id})`, { autoClose: 5000 });
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
  constructor(app: JupyterFrontEnd, shell: ILabShell, onClick: () => void) {
    super();
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
    if (!fedhub && spec && this._serverCentre && this._context?.session?.kernel) {
      this.node.textContent = `Kernel at ${this._serverCentre}`;
      this.node.title = `This notebook's kernel runs beside the server at ${this._serverCentre}. Click to move it`;
    } else if (!fedhub) {
      this.node.textContent = '';
    } else {
      const status = this._context?.kernelDisplayStatus ?? '';
      const waiting = ['starting', 'initializing', 'restarting'].includes(status) ? ` (${status})` : '';
      this.node.textContent = `Kernel at ${fedhub.centre_name}${waiting}`;
      this.node.title = `This notebook's kernel runs at ${fedhub.centre_name} as a Slurm job. Click to move it`;
    }
    this._activeChanged.emit(undefined);
  }

  /** Tells the status bar to show or hide the item. */
  get activeChanged(): ISignal<this, void> {
    return this._activeChanged;
  }

  private _activeChanged = new Signal<this, void>(this);

  private _app: JupyterFrontEnd;
  private _context: ISessionContext | null = null;
  private _serverCentre = '';
}

function field(label: string, input: HTMLElement): HTMLElement {
  const row = document.createElement('label');
  row.className = 'fedhub-kernel-field';
  const text = document.createElement('span');
  text.textContent = label;
  row.append(text, input);
  return row;
}

function input(name: string, value: string, hint: string): HTMLInputElement {
  const element = document.createElement('input');
  element.name = name;
  element.value = value;
  element.title = hint;
  element.placeholder = hint;
  return element;
}

function hours(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00`;
}

/** The dialog's form: centres that cannot be chosen are shown disabled, with the reason. */
export class KernelRequestForm extends Widget {
  constructor(centres: ICentreChoice[], values: Record<string, string> | null = null) {
    super();
    this.addClass('fedhub-kernel-form');
    this._centres = centres;
    const select = document.createElement('select');
    select.name = 'centre';
    for (const centre of centres) {
      const option = document.createElement('option');
      option.value = centre.id;
      option.textContent = centre.available ? centre.name : `${centre.name} (${centre.reason})`;
      option.disabled = !centre.available;
      select.append(option);
    }
    const first = centres.find(c => c.available);
    if (first) {
      select.value = first.id;
    }
    this._centre = select;
    this._partition = document.createElement('select');
    this._partition.name = 'partition';
    this._project = document.createElement('select');
    this._project.name = 'project';
    this._projectField = field('Project', this._project);
    this._cores = input('cores', '', 'cores');
    this._memory = input('memory', '', 'e.g. 4G');
    this._gpus = input('gpus', '0', 'GPUs');
    this._walltime = input('walltime', '', 'HH:MM:SS');
    select.addEventListener('change', () => this._fill());
    this.node.append(
      field('Centre', select),
      field('Partition', this._partition),
      this._projectField,
      field('Cores', this._cores),
      field('Memory', this._memory),
      field('GPUs', this._gpus),
      field('Walltime', this._walltime)
    );
    if (values?.centre && centres.some(c => c.id === values.centre && c.available)) {
      select.value = values.centre;
    }
    this._fill();
    if (values) {
      // what was typed before (the form shown again after the hub said no)
      this.node.querySelectorAll('input, select').forEach(element => {
        const named = element as HTMLInputElement;
        if (named.name in values && !['centre', 'partition', 'project'].includes(named.name)) {
          named.value = values[named.name];
        }
      });
      if (Array.from(this._project.options).some(option => option.value === values.project)) {
        this._project.value = values.project;
      }
    }
  }

  /** The form's values as the server's API takes them (numbers as numbers). */
  static options(values: Record<string, string>): Record<string, string | number> {
    const options: Record<string, string | number> = { ...values };
    for (const key of ['cores', 'gpus']) {
      if (/^\d+$/.test(String(options[key]))) {
        options[key] = Number(options[key]);
      }
    }
    return options;
  }

  private _fill(): void {
    const centre = this._centres.find(c => c.id === this._centre.value);
    this._partition.replaceChildren();
    if (!centre) {
      return;
    }
    for (const partition of centre.partitions) {
      const option = document.createElement('option');
      option.value = partition.name;
      option.textContent =
        `${partition.name} (up to ${partition.max_cores} cores, ` +
        `${Math.round(partition.max_memory_mb / 1024)}G, ${hours(partition.max_walltime_s)})`;
      this._partition.append(option);
    }
    this._partition.value = centre.defaults.partition;
    this._project.replaceChildren(
      ...centre.projects.map(name => {
        const option = document.createElement('option');
        option.value = option.textContent = name;
        return option;
      })
    );
    this._project.value = centre.defaults.project ?? centre.projects[0] ?? '';
    this._projectField.hidden = centre.projects.length === 0;
    this._cores.value = String(centre.defaults.cores);
    this._memory.value = `${Math.round((centre.defaults.memory_mb / 1024) * 10) / 10}G`;
    this._walltime.value = hours(centre.defaults.walltime_s);
  }

  getValue(): Record<string, string> {
    return {
      centre: this._centre.value,
      partition: this._partition.value,
      ...(this._project.options.length ? { project: this._project.value } : {}),
      cores: this._cores.value,
      memory: this._memory.value,
      gpus: this._gpus.value,
      walltime: this._walltime.value
    };
  }

  private _centres: ICentreChoice[];
  private _centre: HTMLSelectElement;
  private _partition: HTMLSelectElement;
  private _project: HTMLSelectElement;
  private _projectField: HTMLElement;
  private _cores: HTMLInputElement;
  private _memory: HTMLInputElement;
  private _gpus: HTMLInputElement;
  private _walltime: HTMLInputElement;
}

/**
 * Ask for a centre and resources until the server takes them: the centres come from the hub
 * (those that cannot be chosen greyed, with the reason); `submit` posts the options and the
 * form comes back, with what was typed, when the hub says no. Answers the accepted response.
 */
export async function askForCentre(
  title: string,
  accept: string,
  submit: (options: Record<string, string | number>) => Promise<Response>,
  values: Record<string, string> | null = null
): Promise<Response | null> {
  const listed = await requestAPI('kernel-centres');
  if (!listed.ok) {
    await showErrorMessage(title, await messageOf(listed));
    return null;
  }
  const centres = (await listed.json()).centres as ICentreChoice[];
  for (;;) {
    const result = await showDialog({
      title,
      body: new KernelRequestForm(centres, values),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: accept })]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    values = result.value as Record<string, string>;
    const response = await submit(KernelRequestForm.options(values));
    if (response.ok) {
      return response;
    }
    await showErrorMessage(title, await messageOf(response)); // then the form again
  }
}

/** "Kernel at another centre…": ask, let the hub check, switch the current notebook's kernel. */
export async function chooseKernelAtCentre(app: JupyterFrontEnd, shell: ILabShell, watch: KernelWatch): Promise<void> {
  const context = sessionContextOf(shell.currentWidget);
  if (!context) {
    await showErrorMessage('Kernel at another centre', 'Open a notebook or console first.');
    return;
  }
  const response = await askForCentre('Kernel at another centre', 'Start kernel', options =>
    requestAPI('kernelspecs', { method: 'POST', body: JSON.stringify(options) })
  );
  if (!response) {
    return;
  }
  const spec = await response.json();
  await app.serviceManager.kernelspecs.refreshSpecs();
  void watch.poke();
  await context.changeKernel({ name: spec.name });
}

export function activateKernels(app: JupyterFrontEnd, shell: ILabShell, statusBar: IStatusBar | null): KernelWatch {
  const watch = new KernelWatch();
  app.commands.addCommand(CommandIDs.kernelAtCentre, {
    label: 'Kernel at another centre…',
    caption: "Run this notebook's kernel as a Slurm job at another centre of the federation",
    execute: () => chooseKernelAtCentre(app, shell, watch)
  });
  if (statusBar) {
    const item = new KernelCentreStatus(app, shell, () => void app.commands.execute(CommandIDs.moveKernel));
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
