import { MagpieClientError, WalletError, formatYuan } from '@magpie/sdk';
import { t } from './i18n/index.ts';

/** "¥12.50" for 1250 fen (integer arithmetic only: see the SDK's formatYuan). */
export const yuan = (fen: number): string => t('wallet.yuan', { amount: formatYuan(fen) });

/** The user-facing text of a refused wallet or red-packet call. */
export function walletErrorText(err: unknown): string {
  if (err instanceof WalletError) {
    switch (err.reason) {
      case 'pin_wrong':
        return t('wallet.err_pin_wrong', { count: err.triesLeft ?? 0 });
      case 'insufficient_balance':
      case 'muted':
      case 'expired':
      case 'all_claimed':
      case 'not_member':
      case 'already_opened':
      case 'exclusive':
      case 'own_packet':
      case 'pin_locked':
      case 'pin_required':
      case 'pin_not_set':
      case 'pin_already_set':
      case 'pin_format':
      case 'bad_password':
      case 'balance_limit':
      case 'amount_above_limit':
      case 'count_above_limit':
      case 'total_above_limit':
      case 'total_below_count':
        return t(`wallet.err_${err.reason}`);
      default:
        return t('wallet.err_other', { message: err.message });
    }
  }
  return t('wallet.err_other', { message: err instanceof MagpieClientError || err instanceof Error ? err.message : String(err) });
}
