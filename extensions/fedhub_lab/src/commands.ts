/** The ids of FedHub's lab commands (the palette, menus, status bar items and tests use them). */
export namespace CommandIDs {
  export const openQuota = 'fedhub-lab:open-quota';
  export const kernelAtCentre = 'fedhub-lab:kernel-at-centre';
  export const moveKernel = 'fedhub-lab:move-kernel';
  export const continueElsewhere = 'fedhub-lab:continue-elsewhere';
  export const extendSession = 'fedhub-lab:extend-session';
  export const openWorkspace = 'fedhub-lab:open-workspace';
  export const copyToCentre = 'fedhub-lab:copy-to-centre';
}
