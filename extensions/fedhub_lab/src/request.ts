/**
 * The one way FedHub's lab code asks its server extension (`<base>/fedhub/api/<path>`), with the
 * server's own settings (XSRF, credentials), and reads an error's message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export async function requestAPI(path: string, init: RequestInit = {}): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'fedhub', 'api', path);
  return ServerConnection.makeRequest(url, init, settings);
}

export async function messageOf(response: Response): Promise<string> {
  try {
    return (await response.json()).message ?? `the server answered ${response.status}`;
  } catch {
    return `the server answered ${response.status}`;
  }
}
