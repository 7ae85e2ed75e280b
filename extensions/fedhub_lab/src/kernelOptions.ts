/**
 * What the kernel form works with, without React: the hub's centres and option fields, each
 * centre's defaults, and the values as the server's API takes them (unit-tested by jest).
 */
import { walltimeText } from './format';

export interface IPartition {
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

/** One user option (fedhub.request.OptionField). */
export interface IOptionField {
  name: string;
  kind: 'choice' | 'count' | 'memory' | 'walltime';
  example: string;
  minimum: number | null;
  limit: string | null;
}

export type FormValues = Record<string, string>;

export function memoryText(mb: number): string {
  return `${Math.round((mb / 1024) * 10) / 10}G`;
}

/** What the form shows for a centre before the user types anything. */
export function defaultsFor(centre: ICentreChoice | undefined): FormValues {
  if (!centre) {
    return {};
  }
  return {
    centre: centre.id,
    partition: centre.defaults.partition,
    ...(centre.projects.length ? { project: centre.defaults.project ?? centre.projects[0] } : {}),
    cores: String(centre.defaults.cores),
    memory: memoryText(centre.defaults.memory_mb),
    gpus: '0',
    ...gpuTypeOf(centre, centre.defaults.partition),
    walltime: walltimeText(centre.defaults.walltime_s)
  };
}

/** The first GPU type of a partition, when it has GPUs. */
export function gpuTypeOf(centre: ICentreChoice, partition: string): FormValues {
  const gpus = centre.partitions.find(p => p.name === partition)?.gpus ?? [];
  return gpus.length ? { gpu_type: gpus[0].type } : {};
}

/** The values as the server's API takes them: numbers as numbers, nothing the form hides. */
export function optionsOf(values: FormValues, fields: IOptionField[]): Record<string, string | number> {
  const options: Record<string, string | number> = {};
  for (const field of fields) {
    const value = values[field.name];
    if (value === undefined || value === '') {
      continue;
    }
    options[field.name] = field.kind === 'count' && /^\d+$/.test(value) ? Number(value) : value;
  }
  return options;
}
