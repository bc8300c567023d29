import { NvrError } from '../../src/errors.js';

/** Runs fn, asserts it threw an NvrError, and returns it for further assertions. */
export function thrown(fn: () => unknown): NvrError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NvrError);
    return e as NvrError;
  }
  throw new Error('expected an NvrError');
}
