export {
  CLICK_ID_LENGTH,
  CLICK_ID_PATTERN,
  clickIdTime,
  generateClickId,
  verifyClickId,
  type ClickIdVerification,
} from './click-id.ts'
export {
  ClickIdKeyError,
  createClickIdKeyring,
  DEVELOPMENT_CLICK_ID_KEYS,
  MAX_CLICK_ID_KEY_ID,
  MIN_CLICK_ID_SECRET_BYTES,
  parseClickIdKeys,
  type ClickIdKeyring,
  type ClickIdKeyringOptions,
} from './keyring.ts'
