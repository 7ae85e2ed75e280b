/**
 * The one way FedHub's lab code asks its server extension (`<base>/fedhub/api/<path>`), with the
 * server's own settings (XSRF, credentials) and the lab's language, and reads an error's message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

let language = '';
let words: TranslationBundle = nullTranslator.load('fedhub_lab');

/** The lab's language (JupyterLab's translator, e.g. "zh-CN"): sent as Accept-Language, so the
 * hub words its messages as the lab does, whatever the browser's own setting. */
export function useLanguage(code: string, trans: TranslationBundle): void {
  language = code;
  words = trans;
}

export async function requestAPI(path: string, init: RequestInit = {}): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'fedhub', 'api', path);
  const headers = new Headers(init.headers);
  if (language && !headers.has('Accept-Language')) {
    headers.set('Accept-Language', language);
  }
  return ServerConnection.makeRequest(url, { ...init, headers }, settings);
}

export async function messageOf(response: Response): Promise<string> {
  try {
    return (await response.json()).message ?? words.__('the server answered %1', response.status);
  } catch {
    return words.__('the server answered %1', response.status);
  }
}
