/**
 * FedHub's JupyterLab extension: the allocation status bar item, the side panel and the
 * threshold warnings (hidden when the server has no quota service), kernels at the
 * federation's centres (kernels.ts) and moving a running kernel between them (moves.ts).
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { activateKernels } from './kernels';
import { QuotaModel } from './model';
import { QuotaPanel } from './panel';
import { MoveAdvisor } from './moves';
import { QuotaStatus } from './status';
import { watchThresholds } from './warnings';

const PLUGIN_ID = 'fedhub-lab:quota';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Allocations at the federation\'s centres: status bar, panel and warnings.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IStatusBar, ISettingRegistry, ICommandPalette, IMainMenu],
  activate: (app: JupyterFrontEnd, shell: ILabShell, statusBar: IStatusBar | null,
    settings: ISettingRegistry | null, palette: ICommandPalette | null, mainMenu: IMainMenu | null) => {
    const model = new QuotaModel(60);
    const panel = new QuotaPanel(model);
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
    app.commands.addCommand('fedhub-lab:open-quota', {
      label: 'Show Allocations',
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
      const item = new QuotaStatus(model, openPanel);
      statusBar.registerStatusItem(PLUGIN_ID, {
        item,
        align: 'left',
        rank: 50,
        isActive: () => item.isActive,
        activeStateChanged: model.stateChanged
      });
    }
    watchThresholds(model);
    const advisor = new MoveAdvisor(app, shell, model, activateKernels(app, shell, statusBar));
    palette?.addItem({ command: 'fedhub-lab:kernel-at-centre', category: 'Kernel' });
    palette?.addItem({ command: 'fedhub-lab:move-kernel', category: 'Kernel' });
    mainMenu?.kernelMenu.addGroup([{ command: 'fedhub-lab:kernel-at-centre' }, { command: 'fedhub-lab:move-kernel' }], 50);
    if (settings) {
      void settings.load(PLUGIN_ID).then(loaded => {
        const apply = () => {
          model.setInterval(loaded.get('refreshInterval').composite as number);
          advisor.walltimeMinutes = loaded.get('moveBeforeWalltimeMinutes').composite as number;
        };
        apply();
        loaded.changed.connect(apply);
      }).catch(() => undefined);
    }
  }
};

export default plugin;
