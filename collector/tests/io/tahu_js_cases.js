// Sparkplug B payloads made by an independent implementation (the npm
// package sparkplug-payload, Eclipse Tahu's JavaScript), with what each
// metric holds, as JSON on stdout, for collector/tests/io/sparkplug.rs.
const Long = require('long');
const sp = require('sparkplug-payload').get('spBv1.0');

const T = 1772427600000; // 2026-03-02T05:00:00Z
const CASES = [
  ['int8', 'Int8', 1, -5, -5],
  ['int16', 'Int16', 2, -300, -300],
  ['int32', 'Int32', 3, -70000, -70000],
  ['int64', 'Int64', 4, Long.fromString('-5000000000'), -5000000000],
  ['uint8', 'UInt8', 5, 200, 200],
  ['uint16', 'UInt16', 6, 60000, 60000],
  ['uint32', 'UInt32', 7, 4000000000, 4000000000],
  ['uint64', 'UInt64', 8, Long.fromString('9223372036854775813', true), '9223372036854775813'],
  ['float', 'Float', 9, 1.5, 1.5],
  ['double', 'Double', 10, 2.25, 2.25],
  ['bool', 'Boolean', 11, true, true],
  ['string', 'String', 12, 'running', 'running'],
  ['text', 'Text', 14, 'Vial 2 ml', 'Vial 2 ml'],
  ['datetime', 'DateTime', 13, T, T],
  ['bytes', 'Bytes', 17, Buffer.from([1, 2, 255]), '0102ff'],
];

const birth = [], data = [], expect = [];
CASES.forEach(([name, type, code, value, want], i) => {
  const alias = i + 1;
  birth.push({ name, alias, type, value, timestamp: T + alias });
  data.push({ alias, type, value, timestamp: T + 1000 + alias });
  expect.push({ name, alias, datatype: code, value: want });
});
birth.push({ name: 'nothing', alias: 90, type: 'Double', value: null, isNull: true, timestamp: T });
data.push({ alias: 91, type: 'Double', value: 7.5, isHistorical: true, timestamp: T - 60000 });
const hex = (p) => Buffer.from(sp.encodePayload(p)).toString('hex');
console.log(JSON.stringify({
  nbirth: hex({ timestamp: T, seq: 0, metrics: birth }),
  ndata: hex({ timestamp: T + 1000, seq: 1, metrics: data }),
  metrics: expect,
  t: T,
}));
