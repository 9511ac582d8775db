/** The ingest admin API (SPEC §4) and ClickHouse's HTTP interface, as the CLI uses them. */
export interface Endpoints {
  ingestUrl: string
  adminToken: string
  clickhouseUrl: string
}

export class CliError extends Error {
  override readonly name = 'CliError'
}

/** An answer other than 2xx from the admin API, with its status. */
export class AdminApiError extends CliError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

async function call(endpoints: Endpoints, method: 'GET' | 'PUT' | 'PATCH', path: string, body?: object): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(new URL(path, endpoints.ingestUrl), {
      method,
      headers: {
        authorization: `Bearer ${endpoints.adminToken}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
  } catch (err) {
    throw new CliError(`cannot reach ingest at ${endpoints.ingestUrl}: ${(err as Error).message}`)
  }
  const text = await res.text()
  const parsed: unknown = text ? safeJson(text) : undefined
  if (!res.ok) {
    const message = (parsed as { message?: string } | undefined)?.message ?? text
    throw new AdminApiError(res.status, `${method} ${path}: ${res.status} ${message}`)
  }
  return parsed
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const adminApi = {
  listCampaigns: async (e: Endpoints): Promise<Record<string, unknown>[]> => {
    const body = await call(e, 'GET', '/admin/campaigns')
    if (Array.isArray(body)) return body as Record<string, unknown>[]
    return ((body as { campaigns?: unknown[] }).campaigns ?? []) as Record<string, unknown>[]
  },
  getCampaign: (e: Endpoints, id: string) => call(e, 'GET', `/admin/campaigns/${encodeURIComponent(id)}`),
  putCampaign: (e: Endpoints, id: string, campaign: object) =>
    call(e, 'PUT', `/admin/campaigns/${encodeURIComponent(id)}`, campaign),
  patchCampaign: (e: Endpoints, id: string, fields: object) =>
    call(e, 'PATCH', `/admin/campaigns/${encodeURIComponent(id)}`, fields),
  listPartners: async (e: Endpoints): Promise<Record<string, unknown>[]> =>
    ((await call(e, 'GET', '/admin/partners')) as { partners: Record<string, unknown>[] }).partners,
  getPartner: (e: Endpoints, id: string) => call(e, 'GET', `/admin/partners/${encodeURIComponent(id)}`),
  putPartner: (e: Endpoints, id: string, partner: object) =>
    call(e, 'PUT', `/admin/partners/${encodeURIComponent(id)}`, partner),
  trackingLink: async (e: Endpoints, campaign: string, params: Record<string, string>): Promise<string> => {
    const query = new URLSearchParams(params).toString()
    const body = await call(e, 'GET', `/admin/campaigns/${encodeURIComponent(campaign)}/link${query ? `?${query}` : ''}`)
    if (typeof body === 'string') return body
    const link = (body as { url?: string; link?: string }).url ?? (body as { link?: string }).link
    if (!link) throw new CliError(`unexpected answer from the link endpoint: ${JSON.stringify(body)}`)
    return link
  },
}

/**
 * Runs SQL through ClickHouse's HTTP interface (a server, or the sink's embedded endpoint) and
 * returns the text ClickHouse rendered; `Pretty*` formats are readable tables already.
 */
export async function runSql(e: Endpoints, sql: string, format: string, params: Record<string, string> = {}): Promise<string> {
  const url = new URL(e.clickhouseUrl)
  const auth = url.username ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}` : undefined
  url.username = ''
  url.password = ''
  url.searchParams.set('default_format', format)
  for (const [name, value] of Object.entries(params)) url.searchParams.set(`param_${name}`, value)
  let res: Response
  try {
    res = await fetch(url, { method: 'POST', body: sql, headers: auth ? { authorization: auth } : {} })
  } catch (err) {
    throw new CliError(`cannot reach ClickHouse at ${url.origin}: ${(err as Error).message}`)
  }
  const text = await res.text()
  if (!res.ok) throw new CliError(text.trim() || `ClickHouse answered ${res.status}`)
  return text
}
