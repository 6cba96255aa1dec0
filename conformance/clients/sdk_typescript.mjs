// One scenario of the official TypeScript SDK against ANTHROPIC_BASE_URL, run by the clients job
// with node (the SDK is loaded from the npm prefix the job installed it into):
//
//     node sdk_typescript.mjs PREFIX SCENARIO MODEL
//
// The key comes from ANTHROPIC_API_KEY; ANTHROPIC_CUSTOM_HEADERS ("Name: Value" lines, as Claude
// Code reads it) adds headers to every request. Exit 0 when the SDK's answer is what the scenario
// expects; otherwise one line on stderr saying what went wrong, and exit 1.
import { createRequire } from 'node:module';
import path from 'node:path';

const PROMPT = 'Reply with exactly: PONG';
const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

class Unexpected extends Error {}

function expect(condition, what) {
  if (!condition) throw new Unexpected(what);
}

function textOf(message) {
  return message.content.filter((block) => block.type === 'text').map((block) => block.text).join('');
}

async function create(client, model) {
  const message = await client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] });
  expect(textOf(message) === 'PONG', `create answered ${JSON.stringify(textOf(message))}, expected "PONG"`);
}

async function stream(client, model) {
  let streamed = '';
  const events = client.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: PROMPT }] });
  events.on('text', (text) => {
    streamed += text;
  });
  const message = await events.finalMessage();
  expect(streamed === 'PONG', `the stream's text was ${JSON.stringify(streamed)}, expected "PONG"`);
  expect(message.stop_reason === 'end_turn', `the streamed message stopped with ${message.stop_reason}`);
}

async function tools(client, model) {
  const messages = [{ role: 'user', content: 'Use the get_weather tool for Paris.' }];
  const first = await client.messages.create({ model, max_tokens: 256, tools: [WEATHER_TOOL], messages });
  const calls = first.content.filter((block) => block.type === 'tool_use');
  expect(first.stop_reason === 'tool_use' && calls.length === 1, `expected one tool call, got ${JSON.stringify(first.content)}`);
  messages.push(
    { role: 'assistant', content: first.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: calls[0].id, content: 'Sunny, 21 C' }] },
  );
  const final = await client.messages.stream({ model, max_tokens: 256, tools: [WEATHER_TOOL], messages }).finalMessage();
  expect(textOf(final).includes('Sunny, 21 C'), `the answer to the tool result was ${JSON.stringify(textOf(final))}`);
}

async function thinking(client, model) {
  const settings = { type: 'enabled', budget_tokens: 1024 };
  const messages = [{ role: 'user', content: PROMPT }];
  const first = await client.messages.stream({ model, max_tokens: 2048, thinking: settings, messages }).finalMessage();
  const blocks = first.content.filter((block) => block.type === 'thinking');
  expect(blocks.length === 1 && blocks[0].signature, `expected one signed thinking block, got ${JSON.stringify(first.content)}`);
  // The signature round trip: the thinking block goes back as it came.
  messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: PROMPT });
  const second = await client.messages.create({ model, max_tokens: 2048, thinking: settings, messages });
  expect(textOf(second) === 'PONG', `the turn after thinking answered ${JSON.stringify(textOf(second))}`);
}

async function countTokens(client, model) {
  const counted = await client.messages.countTokens({ model, messages: [{ role: 'user', content: PROMPT }] });
  expect(counted.input_tokens > 0, `count_tokens answered ${counted.input_tokens} input tokens`);
}

const SCENARIOS = { create, stream, tools, thinking, count_tokens: countTokens };

function customHeaders(value) {
  const headers = {};
  for (const line of value.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

async function main([prefix, scenario, model]) {
  if (!prefix || !(scenario in SCENARIOS) || !model) {
    console.error(`usage: sdk_typescript.mjs PREFIX {${Object.keys(SCENARIOS).join(',')}} MODEL`);
    return 2;
  }
  const require = createRequire(path.join(path.resolve(prefix), 'package.json'));
  const { default: Anthropic } = await import(require.resolve('@anthropic-ai/sdk'));
  const headers = customHeaders(process.env.ANTHROPIC_CUSTOM_HEADERS ?? '');
  const client = new Anthropic({ defaultHeaders: headers, maxRetries: 0, timeout: 60_000 });
  try {
    await SCENARIOS[scenario](client, model);
  } catch (error) {
    console.error(`${error.constructor.name}: ${error.message}`.split('\n')[0]);
    return 1;
  }
  console.log(`${scenario}: ok`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
