/**
 * What FedHub's three lab plugins share: the quota plugin provides the allocation model, the
 * kernels plugin the watch over this server's kernels at centres; the moves plugin uses both.
 */
import { Token } from '@lumino/coreutils';

import type { KernelWatch } from './kernels';
import type { QuotaModel } from './model';

export const IQuotaModel = new Token<QuotaModel>(
  'fedhub-lab:IQuotaModel',
  "The user's allocations at every centre, polled from the server extension."
);

export const IKernelWatch = new Token<KernelWatch>(
  'fedhub-lab:IKernelWatch',
  "This server's kernels at the federation's centres: their state, waits and ends."
);
