/** What the kernel form starts from and what it sends (src/kernelOptions.ts). */
import { defaultsFor, ICentreChoice, IOptionField, optionsOf } from '../src/kernelOptions';

// as GET fedhub/api/kernel-centres answers (fedhub.request.OPTION_FIELDS, a centre of the demo)
const fields: IOptionField[] = [
  { name: 'centre', kind: 'choice', example: 'alpha', minimum: null, limit: null },
  { name: 'partition', kind: 'choice', example: 'batch', minimum: null, limit: null },
  { name: 'project', kind: 'choice', example: 'chem-101', minimum: null, limit: null },
  { name: 'cores', kind: 'count', example: '4', minimum: 1, limit: 'max_cores' },
  { name: 'memory', kind: 'memory', example: '4G', minimum: null, limit: 'max_memory_mb' },
  { name: 'gpus', kind: 'count', example: '1', minimum: 0, limit: null },
  { name: 'gpu_type', kind: 'choice', example: 'a100', minimum: null, limit: null },
  { name: 'walltime', kind: 'walltime', example: '01:30:00', minimum: null, limit: 'max_walltime_s' }
];

const centre = (projects: string[], gpus: { type: string; max: number }[] = []): ICentreChoice => ({
  id: 'beta',
  name: 'Beta',
  available: true,
  reason: '',
  partitions: [
    { name: 'batch', max_cores: 8, max_memory_mb: 16384, max_walltime_s: 14400, gpus },
    { name: 'long', max_cores: 4, max_memory_mb: 8192, max_walltime_s: 86400, gpus: [] }
  ],
  projects,
  defaults: { partition: 'batch', cores: 1, memory_mb: 1536, walltime_s: 3600, project: projects[1] }
});

describe('defaultsFor', () => {
  it("fills the form with the centre's defaults, as the hub gives them", () => {
    expect(defaultsFor(centre(['chem-101', 'phys-7']))).toEqual({
      centre: 'beta',
      partition: 'batch',
      project: 'phys-7',
      cores: '1',
      memory: '1.5G',
      gpus: '0',
      walltime: '01:00:00'
    });
  });
  it('leaves the project out where the centre offers no choice, and picks a GPU type where there are GPUs', () => {
    const values = defaultsFor(centre([], [{ type: 'a100', max: 4 }]));
    expect(values.project).toBeUndefined();
    expect(values.gpu_type).toBe('a100');
  });
  it('is empty without a centre (none can be chosen)', () => {
    expect(defaultsFor(undefined)).toEqual({});
  });
});

describe('optionsOf', () => {
  it('sends counts as numbers, in the schema order, and leaves empty fields to the hub', () => {
    const options = optionsOf(
      { walltime: '00:10:00', cores: '2', memory: '', centre: 'beta', gpus: '0', colour: 'red' },
      fields
    );
    expect(options).toEqual({ centre: 'beta', cores: 2, gpus: 0, walltime: '00:10:00' });
    expect(Object.keys(options)).toEqual(['centre', 'cores', 'gpus', 'walltime']);
  });
  it('keeps what the user typed that is not a number, for the hub to refuse by name', () => {
    expect(optionsOf({ centre: 'beta', cores: 'many' }, fields)).toEqual({ centre: 'beta', cores: 'many' });
  });
});
