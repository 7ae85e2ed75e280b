/**
 * FedHub's JupyterLab extension, three plugins joined by tokens (tokens.ts):
 *
 *   fedhub-lab:quota    the allocation status bar item, side panel and threshold warnings
 *                       (hidden when the server has no quota service); provides IQuotaModel
 *   fedhub-lab:kernels  kernels at the federation's centres (kernels.ts); provides IKernelWatch
 *   fedhub-lab:moves    moving a running kernel between centres (moves.ts), and the moves FedHub
 *                       suggests; uses both
 *   fedhub-lab:time-left  how long this server's job has left, warnings before its end (timeLeft.ts),
 *                       and "Continue at another centre…" (continueSession.ts)
 *   fedhub-lab:workspace  the user's files at other centres, copies between centres (workspace.ts)
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { CommandIDs } from './commands';
import { useLanguage } from './request';
import { addContinueCommand, addExtendCommand } from './continueSession';
import { activateKernels, KernelWatch } from './kernels';
import { QuotaModel } from './model';
import { addMoveCommand, MoveAdvisor } from './moves';
import { QuotaPanel } from './panel';
import { QuotaStatus } from './status';
import { TimeLeftModel, TimeLeftStatus, warnBeforeTheEnd } from './timeLeft';
import { IKernelWatch, IQuotaModel } from './tokens';
import { watchThresholds } from './warnings';
import { addCopyToCommand, WorkspacePanel } from './workspace';

const QUOTA_PLUGIN = 'fedhub-lab:quota'; // also the id of the settings (schema/quota.json)
/** The lab's translation domain: every user-visible string goes through it. */
const DOMAIN = 'fedhub_lab';

/** FedHub's words in the lab's language, and the hub's answers in it too (request.ts). */
function translation(translator: ITranslator | null): TranslationBundle {
  const chosen = translator ?? nullTranslator;
  const trans = chosen.load(DOMAIN);
  useLanguage(chosen.languageCode, trans);
  return trans;
}

const quota: JupyterFrontEndPlugin<QuotaModel> = {
  id: QUOTA_PLUGIN,
  description: "Allocations at the federation's centres: status bar, panel and warnings.",
  autoStart: true,
  requires: [ILabShell],
  optional: [IStatusBar, ISettingRegistry, ITranslator],
  provides: IQuotaModel,
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    statusBar: IStatusBar | null,
    settings: ISettingRegistry | null,
    translator: ITranslator | null
  ): QuotaModel => {
    const trans = translation(translator);
    const model = new QuotaModel(60);
    const panel = new QuotaPanel(model, trans);
    // The panel joins the sidebar only when there is something to show (figures, or the user
    // asked), so a hub without the service shows nothing.
    const ensurePanel = () => {
      if (!panel.isAttached) {
        shell.add(panel, 'right', { rank: 900 });
      }
    };
    const openPanel = () => {
      ensurePanel();
      shell.activateById(panel.id);
      void model.refreshNow();
    };
    app.commands.addCommand(CommandIDs.openQuota, {
      label: trans.__('Show Allocations'),
      execute: openPanel
    });
    model.changed.connect(() => {
      // What the extension concluded (figures, absent, unavailable), on the page for anyone
      // checking why nothing shows: <body data-fedhub-quota="absent">.
      document.body.dataset.fedhubQuota = model.state.kind;
      if (model.state.kind === 'figures') {
        ensurePanel();
      }
    });
    if (statusBar) {
      const item = new QuotaStatus(model, openPanel, trans);
      statusBar.registerStatusItem(QUOTA_PLUGIN, {
        item,
        align: 'left',
        rank: 50,
        isActive: () => item.isActive,
        activeStateChanged: model.stateChanged
      });
    }
    watchThresholds(model, trans);
    if (settings) {
      void settings
        .load(QUOTA_PLUGIN)
        .then(loaded => {
          const apply = () => model.setInterval(loaded.get('refreshInterval').composite as number);
          apply();
          loaded.changed.connect(apply);
        })
        .catch(() => undefined);
    }
    return model;
  }
};

const kernels: JupyterFrontEndPlugin<KernelWatch> = {
  id: 'fedhub-lab:kernels',
  description: "Kernels at the federation's centres: the launcher's kernelspecs, the form, the status item.",
  autoStart: true,
  requires: [ILabShell],
  optional: [IStatusBar, ICommandPalette, IMainMenu, ITranslator],
  provides: IKernelWatch,
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null,
    translator: ITranslator | null
  ): KernelWatch => {
    const trans = translation(translator);
    const watch = activateKernels(app, shell, statusBar, trans);
    palette?.addItem({ command: CommandIDs.kernelAtCentre, category: trans.__('Kernel') });
    mainMenu?.kernelMenu.addGroup([{ command: CommandIDs.kernelAtCentre }], 50);
    return watch;
  }
};

const moves: JupyterFrontEndPlugin<void> = {
  id: 'fedhub-lab:moves',
  description: 'Move a running kernel, with its variables, to another centre; suggested moves.',
  autoStart: true,
  requires: [ILabShell, IKernelWatch, IQuotaModel],
  optional: [ISettingRegistry, ICommandPalette, IMainMenu, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    watch: KernelWatch,
    model: QuotaModel,
    settings: ISettingRegistry | null,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null,
    translator: ITranslator | null
  ) => {
    const trans = translation(translator);
    addMoveCommand(app, shell, trans);
    const advisor = new MoveAdvisor(app, shell, model, watch, trans);
    palette?.addItem({ command: CommandIDs.moveKernel, category: trans.__('Kernel') });
    mainMenu?.kernelMenu.addGroup([{ command: CommandIDs.moveKernel }], 51);
    if (settings) {
      void settings
        .load(QUOTA_PLUGIN)
        .then(loaded => {
          const apply = () => {
            advisor.walltimeMinutes = loaded.get('moveBeforeWalltimeMinutes').composite as number;
          };
          apply();
          loaded.changed.connect(apply);
        })
        .catch(() => undefined);
    }
  }
};

const timeLeft: JupyterFrontEndPlugin<void> = {
  id: 'fedhub-lab:time-left',
  description: "How long this server's job has left, the warnings before the end, and continuing elsewhere.",
  autoStart: true,
  optional: [IStatusBar, ICommandPalette, IMainMenu, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null,
    translator: ITranslator | null
  ) => {
    const trans = translation(translator);
    const model = new TimeLeftModel();
    addContinueCommand(app, trans, () => model.current?.centre ?? '');
    addExtendCommand(
      app,
      trans,
      () => model.extendStep,
      () => model.refreshNow()
    );
    model.changed.connect(() => {
      app.commands.notifyCommandChanged(CommandIDs.continueElsewhere);
      app.commands.notifyCommandChanged(CommandIDs.extendSession);
    });
    const moveOn = () => void app.commands.execute(CommandIDs.continueElsewhere);
    palette?.addItem({ command: CommandIDs.continueElsewhere, category: trans.__('FedHub') });
    palette?.addItem({ command: CommandIDs.extendSession, category: trans.__('FedHub') });
    mainMenu?.fileMenu.addGroup([{ command: CommandIDs.continueElsewhere }, { command: CommandIDs.extendSession }], 2);
    if (statusBar) {
      const item = new TimeLeftStatus(model, trans, moveOn);
      statusBar.registerStatusItem('fedhub-lab:time-left', {
        item,
        align: 'left',
        rank: 40,
        isActive: () => item.isActive,
        activeStateChanged: model.changed
      });
    }
    const saveAll = () => {
      if (app.commands.hasCommand('docmanager:save-all')) {
        void app.commands.execute('docmanager:save-all');
      }
    };
    warnBeforeTheEnd(model, trans, moveOn, saveAll, () => void app.commands.execute(CommandIDs.extendSession));
  }
};

const workspace: JupyterFrontEndPlugin<void> = {
  id: 'fedhub-lab:workspace',
  description: "The user's files at other centres, and copies between centres with their progress.",
  autoStart: true,
  requires: [ILabShell],
  optional: [IDefaultFileBrowser, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    browser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ) => {
    const trans = translation(translator);
    const panel = new WorkspacePanel(app, trans);
    app.commands.addCommand(CommandIDs.openWorkspace, {
      label: trans.__('Show Files at Other Centres'),
      execute: () => {
        if (!panel.isAttached) {
          shell.add(panel, 'right', { rank: 910 });
        }
        shell.activateById(panel.id);
        void panel.refresh();
      }
    });
    addCopyToCommand(app, trans, panel, () => (browser ? Array.from(browser.selectedItems()).map(i => i.path) : []));
    app.contextMenu.addItem({
      command: CommandIDs.copyToCentre,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 12
    });
    palette?.addItem({ command: CommandIDs.openWorkspace, category: trans.__('FedHub') });
    // the panel joins the sidebar once the hub answers (a server FedHub did not start has none)
    void panel.refresh().then(() => {
      if (panel.workspace && !panel.isAttached) {
        shell.add(panel, 'right', { rank: 910 });
      }
    });
  }
};

export default [quota, kernels, moves, timeLeft, workspace];
