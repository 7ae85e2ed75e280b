/**
 * "Continue at another centre…": the whole session (open notebooks, every kernel with its
 * variables, the files beside them, the layout) moves on to a new job at the chosen centre, and
 * the page reopens there at the same address. Reached from the time-left status item, the
 * warnings before the end, the File menu and the palette. Unsaved edits are saved first; while
 * it runs a notification shows each phase with Slurm's words and a Cancel action.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './commands';
import { messageOf, requestAPI } from './request';

interface ICentreChoice {
  id: string;
  name: string;
  available: boolean;
  reason: string;
}

interface IContinuation {
  id: string;
  status: string;
  message: string;
  centre_name: string;
  reason: string;
}

const FINISHED = ['done', 'failed', 'cancelled'];

class CentreChooser extends Widget {
  constructor(centres: ICentreChoice[], here: string, trans: TranslationBundle) {
    super();
    this.addClass('fedhub-continue-chooser');
    const label = document.createElement('label');
    label.textContent = trans.__('Continue this session (notebooks, kernels with their variables, files) at:');
    this._select = document.createElement('select');
    this._select.className = 'jp-mod-styled';
    this._select.append(new Option(trans.__('The centre that can start it soonest'), 'auto'));
    for (const c of centres) {
      const text = c.available
        ? c.id === here
          ? trans.__('%1 (here: a new job with a fresh walltime)', c.name)
          : c.name
        : trans.__('%1 (not available: %2)', c.name, c.reason);
      const option = new Option(text, c.id);
      option.disabled = !c.available;
      this._select.append(option);
    }
    const firstElsewhere = centres.find(c => c.available && c.id !== here);
    this._select.value = firstElsewhere ? firstElsewhere.id : 'auto';
    label.append(this._select);
    this.node.append(label);
  }

  getValue(): string {
    return this._select.value;
  }

  private _select: HTMLSelectElement;
}

async function chooseCentre(trans: TranslationBundle, here: string): Promise<string | null> {
  const response = await requestAPI('kernel-centres');
  if (!response.ok) {
    Notification.error(trans.__('Cannot list the centres: %1', await messageOf(response)));
    return null;
  }
  const centres = (await response.json()).centres as ICentreChoice[];
  const result = await showDialog({
    title: trans.__('Continue at another centre'),
    body: new CentreChooser(centres, here, trans),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Continue') })]
  });
  return result.button.accept ? result.value : null;
}

/** Continue the session at ``centre`` (asked when not given); resolves once it ended. */
export async function continueSession(
  app: JupyterFrontEnd,
  trans: TranslationBundle,
  here: string,
  centre?: string
): Promise<void> {
  const target = centre || (await chooseCentre(trans, here));
  if (!target) {
    return;
  }
  if (app.commands.hasCommand('docmanager:save-all')) {
    await app.commands.execute('docmanager:save-all'); // the browser's unsaved edits go along
  }
  const response = await requestAPI('continue', { method: 'POST', body: JSON.stringify({ centre: target }) });
  if (response.status !== 202) {
    Notification.error(trans.__('Could not continue elsewhere: %1', await messageOf(response)), {
      autoClose: false
    });
    return;
  }
  let current = (await response.json()) as IContinuation;
  const cancel = async () => {
    const answer = await requestAPI(`continue/${current.id}`, { method: 'DELETE' });
    if (!answer.ok) {
      Notification.error(trans.__('It could not be cancelled: %1', await messageOf(answer)));
    }
  };
  const notice = Notification.emit(current.message || trans.__('Continuing at another centre'), 'in-progress', {
    autoClose: false,
    actions: [{ label: trans.__('Cancel'), callback: () => void cancel() }]
  });
  document.body.dataset.fedhubContinue = current.status;
  while (!FINISHED.includes(current.status)) {
    await new Promise(resolve => setTimeout(resolve, 1000));
    const look = await requestAPI(`continue/${current.id}`).catch(() => null);
    if (!look || !look.ok) {
      continue; // the switch: for a moment neither server answers at this address
    }
    current = (await look.json()) as IContinuation;
    document.body.dataset.fedhubContinue = current.status;
    Notification.update({ id: notice, message: current.message, type: 'in-progress', autoClose: false });
  }
  if (current.status === 'done') {
    Notification.update({
      id: notice,
      type: 'success',
      autoClose: false,
      actions: [],
      message: trans.__('Continued at %1: reopening your lab there', current.centre_name)
    });
    window.setTimeout(() => window.location.reload(), 1500);
    return;
  }
  Notification.update({
    id: notice,
    message: current.message,
    type: current.status === 'failed' ? 'error' : 'info',
    autoClose: current.status === 'failed' ? false : 8000,
    actions: []
  });
}

/** The command; ``here()`` names the centre the server runs at now (from the time-left model). */
export function addContinueCommand(app: JupyterFrontEnd, trans: TranslationBundle, here: () => string): void {
  app.commands.addCommand(CommandIDs.continueElsewhere, {
    label: args =>
      args.centreName ? trans.__('Continue at %1', args.centreName as string) : trans.__('Continue at another centre…'),
    caption: trans.__('Move this whole session, with its kernels and files, to a new job at another centre'),
    isEnabled: () => here() !== '',
    execute: args => continueSession(app, trans, here(), args.centre as string | undefined)
  });
}

/** "Extend by 30 min": where the centre lets the hub raise this job's limit. */
export function addExtendCommand(
  app: JupyterFrontEnd,
  trans: TranslationBundle,
  step: () => number,
  extended: () => Promise<void>
): void {
  app.commands.addCommand(CommandIDs.extendSession, {
    label: () =>
      step() > 0 ? trans.__('Extend this server by %1 min', Math.round(step() / 60)) : trans.__('Extend this server'),
    caption: trans.__("Ask the centre for more walltime for this server's job, where it allows it"),
    isEnabled: () => step() > 0,
    execute: async () => {
      const response = await requestAPI('extend', { method: 'POST', body: JSON.stringify({}) });
      if (!response.ok) {
        Notification.error(trans.__('Could not extend: %1', await messageOf(response)), { autoClose: false });
        return;
      }
      const answer = await response.json();
      Notification.success(trans.__('Extended by %1 min', Math.round(answer.extended_s / 60)), { autoClose: 6000 });
      await extended();
    }
  });
}
