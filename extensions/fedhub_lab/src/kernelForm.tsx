/**
 * The form of "Kernel at another centre…" and "Move kernel to centre…", as a React form. Its
 * fields are the hub's option schema (`fields` of `fedhub/api/kernel-centres`, from
 * fedhub.request.OPTION_FIELDS) in the hub's order; the centres, partitions, projects and GPU
 * types to choose from, and each centre's defaults, come with it. Centres that cannot be chosen
 * are shown disabled, with the reason.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { walltimeText } from './format';
import { defaultsFor, FormValues, gpuTypeOf, ICentreChoice, IOptionField, memoryText } from './kernelOptions';

/** The field's label, in the user's language (a field the lab does not know shows its name). */
function labelOf(name: string, trans: TranslationBundle): string {
  const labels: Record<string, string> = {
    centre: trans.__('Centre'),
    partition: trans.__('Partition'),
    project: trans.__('Project'),
    cores: trans.__('Cores'),
    memory: trans.__('Memory'),
    gpus: trans.__('GPUs'),
    gpu_type: trans.__('GPU type'),
    walltime: trans.__('Walltime')
  };
  return labels[name] ?? name;
}

interface IFormProps {
  centres: ICentreChoice[];
  fields: IOptionField[];
  values: FormValues;
  onChange: (values: FormValues) => void;
  trans: TranslationBundle;
}

/** The fields, each a labelled select or input named after its option. */
export function KernelRequestFields(props: IFormProps): JSX.Element {
  const { centres, fields, values, onChange, trans } = props;
  const centre = centres.find(c => c.id === values.centre);
  const partition = centre?.partitions.find(p => p.name === values.partition);
  const set = (name: string, value: string) => {
    if (name === 'centre') {
      onChange(defaultsFor(centres.find(c => c.id === value))); // another centre: its defaults
    } else if (name === 'partition' && centre) {
      const { gpu_type: _, ...rest } = values; // eslint-disable-line @typescript-eslint/no-unused-vars
      onChange({ ...rest, partition: value, ...gpuTypeOf(centre, value) });
    } else {
      onChange({ ...values, [name]: value });
    }
  };

  const choices = (name: string): { value: string; label: string; disabled?: boolean }[] | null => {
    switch (name) {
      case 'centre':
        return centres.map(c => ({
          value: c.id,
          label: c.available ? c.name : trans.__('%1 (%2)', c.name, c.reason),
          disabled: !c.available
        }));
      case 'partition':
        return (centre?.partitions ?? []).map(p => ({
          value: p.name,
          label: trans.__(
            '%1 (up to %2 cores, %3, %4)',
            p.name,
            p.max_cores,
            memoryText(p.max_memory_mb),
            walltimeText(p.max_walltime_s)
          )
        }));
      case 'project':
        return centre?.projects.length ? centre.projects.map(p => ({ value: p, label: p })) : null;
      case 'gpu_type':
        return partition?.gpus.length ? partition.gpus.map(g => ({ value: g.type, label: g.type })) : null;
      default:
        return [];
    }
  };

  const hintOf = (field: IOptionField): string => {
    const limit = field.limit && partition ? (partition as unknown as Record<string, number>)[field.limit] : undefined;
    if (limit === undefined) {
      return trans.__('e.g. %1', field.example);
    }
    const most =
      field.kind === 'memory' ? memoryText(limit) : field.kind === 'walltime' ? walltimeText(limit) : String(limit);
    return trans.__('e.g. %1; at most %2 here', field.example, most);
  };

  return (
    <div className="fedhub-kernel-form">
      {fields.map(field => {
        if (field.kind === 'choice') {
          const options = choices(field.name);
          if (options === null) {
            return null; // nothing to choose at this centre (no projects, no GPUs)
          }
          return (
            <label className="fedhub-kernel-field" key={field.name}>
              <span>{labelOf(field.name, trans)}</span>
              <select
                name={field.name}
                value={values[field.name] ?? ''}
                onChange={event => set(field.name, event.target.value)}
              >
                {options.map(option => (
                  <option key={option.value} value={option.value} disabled={option.disabled}>
                    {option.label}
                  </option>
                ))}
              </select>
            </label>
          );
        }
        const hint = hintOf(field);
        return (
          <label className="fedhub-kernel-field" key={field.name}>
            <span>{labelOf(field.name, trans)}</span>
            <input
              name={field.name}
              value={values[field.name] ?? ''}
              title={hint}
              placeholder={hint}
              inputMode={field.kind === 'count' ? 'numeric' : 'text'}
              onChange={event => set(field.name, event.target.value)}
            />
          </label>
        );
      })}
    </div>
  );
}

/** The dialog's body: the form, and its values for the dialog's result. */
export class KernelRequestForm extends ReactWidget {
  constructor(centres: ICentreChoice[], fields: IOptionField[], trans: TranslationBundle, values: FormValues | null) {
    super();
    this._centres = centres;
    this._fields = fields;
    this._trans = trans;
    const first = centres.find(c => c.available);
    const chosen = values?.centre ? centres.find(c => c.id === values.centre && c.available) : undefined;
    // what was typed before (the form shown again after the hub said no) over the centre's defaults
    this._values = { ...defaultsFor(chosen ?? first), ...(chosen ? values : {}) };
  }

  getValue(): FormValues {
    return this._values;
  }

  render(): JSX.Element {
    return (
      <KernelRequestFields
        centres={this._centres}
        fields={this._fields}
        values={this._values}
        trans={this._trans}
        onChange={values => {
          this._values = values;
          this.update();
        }}
      />
    );
  }

  private _centres: ICentreChoice[];
  private _fields: IOptionField[];
  private _trans: TranslationBundle;
  private _values: FormValues;
}
