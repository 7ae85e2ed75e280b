/**
 * The user's allocations as this notebook server sees them, polled gently from the server
 * handler (`fedhub/api/quota`), which asks the hub's quota service with the server's token.
 * The poll stands by while the tab is hidden and backs off while the service fails.
 */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './request';

export type Level = 'ok' | 'warn' | 'critical' | 'used-up';

export interface IFigure {
  used: number | null;
  limit: number | null;
  remaining?: number | null;
  percent?: number | null;
}

export interface ICentreQuota {
  centre: string;
  name: string;
  error: string | null;
  level?: Level;
  charge_account?: string;
  /** The project, where the centre offers the user several (one entry each). */
  project?: string | null;
  login?: string;
  period_start?: string;
  read_at?: string;
  core_hours?: IFigure;
  gpu_hours?: IFigure;
  storage_gb?: IFigure;
  /** What stopping idle servers gave back this period (the hub's culling). */
  culling?: { core_hours_returned: number; servers_culled: number };
}

export interface IQuotaEnvelope {
  available: true;
  centre: string;
  centre_name: string;
  quota: {
    user: string;
    thresholds: { warn: number; critical: number };
    centres: ICentreQuota[];
  };
}

/** What the extension knows: not asked yet, figures, or why there are none. */
export type QuotaState =
  | { kind: 'unknown' }
  | { kind: 'figures'; envelope: IQuotaEnvelope; fetchedAt: Date }
  | { kind: 'absent'; message: string }
  | { kind: 'unavailable'; message: string };

export class QuotaModel {
  constructor(intervalSeconds: number) {
    this._poll = new Poll({
      auto: true,
      factory: () => this.refresh(),
      frequency: { interval: intervalSeconds * 1000, backoff: true, max: 10 * intervalSeconds * 1000 },
      name: 'fedhub-lab:quota',
      standby: 'when-hidden'
    });
  }

  get state(): QuotaState {
    return this._state;
  }

  get changed(): ISignal<this, QuotaState> {
    return this._changed;
  }

  /** The same moments as ``changed``, in the shape the status bar wants. */
  get stateChanged(): ISignal<this, void> {
    return this._stateChanged;
  }

  /** The current centre's entry, when the figures have one. */
  get current(): ICentreQuota | undefined {
    if (this._state.kind !== 'figures') {
      return undefined;
    }
    const env = this._state.envelope;
    return env.quota.centres.find(c => c.centre === env.centre);
  }

  setInterval(seconds: number): void {
    this._poll.frequency = { interval: seconds * 1000, backoff: true, max: 10 * seconds * 1000 };
  }

  /** Ask now (the panel's Refresh button, or opening the panel). */
  refreshNow(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
  }

  /** One request; rejects on failure so that the poll backs off. */
  async refresh(): Promise<void> {
    let response: Response;
    try {
      response = await requestAPI('quota');
    } catch (e) {
      this._set({ kind: 'unavailable', message: `the notebook server did not answer: ${e}` });
      throw e;
    }
    let body: any = {};
    try {
      body = await response.json();
    } catch {
      body = { message: `HTTP ${response.status}` };
    }
    if (response.ok && body.available) {
      this._set({ kind: 'figures', envelope: body as IQuotaEnvelope, fetchedAt: new Date() });
      return;
    }
    const message = body.message || `HTTP ${response.status}`;
    if (response.status === 404) {
      // No quota service for this server: nothing to show, and no reason to keep asking often.
      this._set({ kind: 'absent', message });
      return;
    }
    this._set({ kind: 'unavailable', message });
    throw new Error(message);
  }

  private _set(state: QuotaState): void {
    this._state = state;
    this._changed.emit(state);
    this._stateChanged.emit();
  }

  private _poll: Poll;
  private _state: QuotaState = { kind: 'unknown' };
  private _changed = new Signal<this, QuotaState>(this);
  private _stateChanged = new Signal<this, void>(this);
}
