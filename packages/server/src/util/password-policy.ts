import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import { MagpieError } from '@magpie/protocol';

let factory: ZxcvbnFactory | undefined;

/** Built on first use (~0.4 s: it loads the dictionaries of common passwords, names and words). */
function estimator(): ZxcvbnFactory {
  factory ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
  });
  return factory;
}

/** Only this many leading characters are estimated: matching is superlinear and a long password is not the weak case. */
const ESTIMATE_CHARS = 64;

/**
 * Refuse passwords an attacker guesses early: zxcvbn-ts (common-password lists, names,
 * words, keyboard patterns, repeats, sequences, dates) must score at least `minScore`
 * (0–4; 2 ≈ more than 10^6 guesses). The username and nickname count as known words.
 * Throws `weak_password` with zxcvbn's human reason.
 */
export function checkPasswordStrength(password: string, minScore: number, userInputs: string[] = []): void {
  if (minScore <= 0) return;
  const r = estimator().check(password.slice(0, ESTIMATE_CHARS), userInputs.filter((s) => s.length > 0));
  if (r.score >= minScore) return;
  const reason = r.feedback.warning ?? 'This password is too easy to guess.';
  const hint = r.feedback.suggestions[0];
  throw new MagpieError('weak_password', hint ? `${reason} ${hint}` : reason, { details: { score: r.score, minScore } });
}

/** Load the dictionaries now (at start), not inside the first register. */
export function warmPasswordPolicy(): void {
  estimator().check('warm-up');
}
