'use strict';
// hello-node: STDIO protocol. Input: JSON {"name": "..."}, a JSON string, or
// plain text. Output: one JSON line {"greeting": "Hello, NAME!"}.

function nameFrom(text) {
  text = text.trim();
  if (!text) return 'world';
  try {
    const data = JSON.parse(text);
    if (data && typeof data.name === 'string') return data.name;
    if (typeof data === 'string') return data;
    return 'world';
  } catch (e) {
    return text;
  }
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const name = nameFrom(Buffer.concat(chunks).toString('utf8'));
  process.stdout.write(JSON.stringify({ greeting: `Hello, ${name}!` }) + '\n');
});
