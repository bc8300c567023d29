/** The report's vocabulary: fix lines only under WARN/FAIL, the summary, the text form. */
import { fail, formatReport, info, pass, summarize, warn } from '../../../src/doctor/types.js';

test('pass and info never carry a fix; warn and fail always do', () => {
  expect(pass('a', 'm', { fix: 'x' })).toEqual({ id: 'a', status: 'PASS', message: 'm' });
  expect(info('a', 'm', { fix: 'x', details: { k: 1 } })).toEqual({ id: 'a', status: 'INFO', message: 'm', details: { k: 1 } });
  expect(warn('a', 'm', 'do it')).toEqual({ id: 'a', status: 'WARN', message: 'm', fix: 'do it' });
  expect(fail('a', 'm', 'do it', { k: 2 })).toEqual({ id: 'a', status: 'FAIL', message: 'm', fix: 'do it', details: { k: 2 } });
});

test('summary counts each status; one FAIL makes it not ok', () => {
  const checks = [pass('a', '1'), info('b', '2'), warn('c', '3', 'f'), warn('d', '4', 'f')];
  expect(summarize(checks)).toEqual({ pass: 1, info: 1, warn: 2, fail: 0, ok: true });
  expect(summarize([...checks, fail('e', '5', 'f')]).ok).toBe(false);
});

test('text: one line per check, a fix line under WARN and FAIL, then the summary', () => {
  const checks = [pass('driver.nvml', 'fine'), fail('config.file', 'writable', 'chmod go-w f')];
  expect(formatReport({ checks, summary: summarize(checks) })).toBe(
    'PASS driver.nvml: fine\nFAIL config.file: writable\n  fix: chmod go-w f\nPROBLEMS FOUND: 1 pass, 0 info, 0 warn, 1 fail\n',
  );
});
