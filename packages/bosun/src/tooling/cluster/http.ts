// One request, the whole answer as text: all the control plane's own health checks and its one
// write (the fake node) need, without pulling in the framework's client.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { ClusterPki } from './pki.js';

/** A status code with the whole body as text. */
export interface TextResponse {
  status: number;
  body: string;
}

/** Does one HTTPS GET against the API server with the admin certificate; resolves status and body. */
export function adminGet(url: string, pki: ClusterPki, timeoutMs = 5_000): Promise<TextResponse> {
  return adminRequest('GET', url, pki, undefined, timeoutMs);
}

/** Sends one request to the API server as the cluster's admin, with `body` as JSON when given. */
export function adminRequest(method: string, url: string, pki: ClusterPki, body: unknown, timeoutMs = 5_000): Promise<TextResponse> {
  return sendText(
    httpsRequest,
    url,
    {
      method,
      ca: pki.ca.cert,
      cert: pki.admin.cert,
      key: pki.admin.key,
      timeout: timeoutMs,
      headers: body ? { 'content-type': 'application/json' } : {},
    },
    body,
  );
}

/** Does one plain HTTP GET, for etcd's health endpoint. */
export function httpGet(url: string, timeoutMs = 2_000): Promise<TextResponse> {
  return sendText(httpRequest, url, { timeout: timeoutMs }, undefined);
}

function sendText(send: typeof httpRequest | typeof httpsRequest, url: string, opts: RequestOptions, body: unknown): Promise<TextResponse> {
  return new Promise((res, rej) => {
    const req = send(url, opts, (r) => {
      let data = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (data += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: data }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}
