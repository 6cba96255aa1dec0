// The official TypeScript SDK making many recorded calls in one process, run by `conformance impact`
// with node (the SDK is loaded from the npm prefix it was installed into):
//
//     node replay_typescript.mjs PREFIX CALLS.json
//
// CALLS.json is a list of {key, base_url, path, stream, body}; each call is made against its own
// base URL (the replay server answers it with what the target once answered), and one JSON line per
// call goes to stdout: {key, message} when the SDK returned something, {key, error, status} when it
// threw. `message` is what the SDK made of the answer: text, tool calls, stop_reason and usage (or
// input_tokens for count_tokens).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const TIMEOUT_MS = 10_000;
// What a call needs to be made at all; the replay answers whatever is sent.
const PLACEHOLDERS = { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hello.' }] };

function summary(message) {
  const content = Array.isArray(message.content) ? message.content : [];
  return {
    text: content.filter((block) => block.type === 'text').map((block) => block.text).join(''),
    tools: content.filter((block) => block.type === 'tool_use').map((block) => ({ name: block.name, input: block.input })),
    stop_reason: message.stop_reason ?? null,
    usage: message.usage ? { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens } : null,
  };
}

async function call(client, { path: endpoint, stream, body }) {
  const params = { ...PLACEHOLDERS, ...(body && typeof body === 'object' ? body : {}) };
  delete params.stream;
  if (endpoint.endsWith('/count_tokens')) {
    delete params.max_tokens;
    return { input_tokens: (await client.messages.countTokens(params)).input_tokens };
  }
  if (stream) return summary(await client.messages.stream(params).finalMessage());
  return summary(await client.messages.create(params));
}

async function main([prefix, callsFile]) {
  if (!prefix || !callsFile) {
    console.error('usage: replay_typescript.mjs PREFIX CALLS.json');
    return 2;
  }
  const require = createRequire(path.join(path.resolve(prefix), 'package.json'));
  const { default: Anthropic } = await import(require.resolve('@anthropic-ai/sdk'));
  for (const each of JSON.parse(readFileSync(callsFile, 'utf-8'))) {
    const client = new Anthropic({ baseURL: each.base_url, apiKey: 'replay', maxRetries: 0, timeout: TIMEOUT_MS });
    let line;
    try {
      line = { key: each.key, message: await call(client, each) };
    } catch (error) {
      line = { key: each.key, error: `${error.constructor.name}: ${error.message}`, status: error.status ?? null };
    }
    console.log(JSON.stringify(line));
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
