import type { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { MagpieError } from '@magpie/protocol';

let factory: Promise<ZxcvbnFactory> | undefined;

/**
 * Built on first use: importing and indexing the dictionaries (common passwords, names,
 * words; several MB) takes ~0.4 s of CPU, which server start should not wait for.
 */
function estimator(): Promise<ZxcvbnFactory> {
  factory ??= (async () => {
    const [{ ZxcvbnFactory }, common, en] = await Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]);
    return new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
    });
  })();
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
export async function checkPasswordStrength(password: string, minScore: number, userInputs: string[] = []): Promise<void> {
  if (minScore <= 0) return;
  const r = (await estimator()).check(password.slice(0, ESTIMATE_CHARS), userInputs.filter((s) => s.length > 0));
  if (r.score >= minScore) return;
  const reason = r.feedback.warning ?? 'This password is too easy to guess.';
  const hint = r.feedback.suggestions[0];
  throw new MagpieError('weak_password', hint ? `${reason} ${hint}` : reason, { details: { score: r.score, minScore } });
}

/** Load the dictionaries in the background (after start), not inside the first register. */
export function warmPasswordPolicy(): void {
  setTimeout(() => void estimator().then((z) => z.check('warm-up'), () => {}), 200).unref();
}
