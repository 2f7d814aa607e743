/** The hosts the AI SDK's providers call unless given a `baseURL`: left out of breaker names. */
const DEFAULT_HOSTS: Readonly<Record<string, string>> = {
  openai: 'api.openai.com',
  anthropic: 'api.anthropic.com',
  google: 'generativelanguage.googleapis.com',
  mistral: 'api.mistral.ai',
  groq: 'api.groq.com',
  xai: 'api.x.ai',
  deepseek: 'api.deepseek.com',
  cohere: 'api.cohere.com',
  perplexity: 'api.perplexity.ai',
  togetherai: 'api.together.xyz',
  fireworks: 'api.fireworks.ai',
  cerebras: 'api.cerebras.ai',
};

/**
 * The host a model object sends its requests to, when it shows it: the AI SDK's providers keep
 * their base URL in the model's `config` (`url({ path, modelId })` for OpenAI's, `baseURL` for
 * Anthropic's). `undefined` when the model does not show it.
 */
function hostOf(model: { readonly modelId: string }): string | undefined {
  const config = (model as { readonly config?: unknown }).config;
  if (config === null || typeof config !== 'object') return undefined;
  const { url, baseURL } = config as { url?: unknown; baseURL?: unknown };
  try {
    const href =
      typeof url === 'function'
        ? (url as (options: { path: string; modelId: string }) => unknown)({
            path: '',
            modelId: model.modelId,
          })
        : baseURL;
    return typeof href === 'string' ? new URL(href).host : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The breaker name of the upstream a model object calls: `<provider>:<modelId>`, where the
 * provider is the AI SDK's provider id up to its first dot, followed by `@<host>` when the
 * model sends its requests elsewhere than its provider's default host (a `baseURL` of another
 * region, deployment or gateway; any host of a provider without a known default, such as
 * Azure's resources). `openai.chat` and `openai.responses` (two endpoints of one provider) are
 * both `openai`, so `openai.chat('gpt-5')` and `openai('gpt-5')` share the breaker
 * `openai:gpt-5`; with `createOpenAI({ baseURL: 'https://eu.example/v1' })` it is
 * `openai:gpt-5@eu.example`.
 */
export function upstreamName(model: {
  readonly provider: string;
  readonly modelId: string;
}): string {
  const provider = model.provider.split('.', 1)[0] || model.provider;
  const name = `${provider}:${model.modelId}`;
  const host = hostOf(model);
  return host === undefined || host === DEFAULT_HOSTS[provider] ? name : `${name}@${host}`;
}
