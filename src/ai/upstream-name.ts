/**
 * The breaker name of the upstream a model object calls: `<provider>:<modelId>`, where the
 * provider is the AI SDK's provider id up to its first dot. `openai.chat` and
 * `openai.responses` (two endpoints of one provider) are both `openai`, so `openai.chat('gpt-5')`
 * and `openai('gpt-5')` share the breaker `openai:gpt-5`; `anthropic.messages` is `anthropic`.
 */
export function upstreamName(model: {
  readonly provider: string;
  readonly modelId: string;
}): string {
  const provider = model.provider.split('.', 1)[0] || model.provider;
  return `${provider}:${model.modelId}`;
}
