// The record types of [MC-NBFX] (.NET Binary Format: XML Data Structure), the byte that starts each
// record of a binary XML document, and the small helpers both the reader and the writer use. A text
// record type is even; the next odd value is the same record "with EndElement" (it closes the
// element it is written in). Data only, no I/O.

export const R = {
  EndElement: 0x01,
  Comment: 0x02,
  Array: 0x03,
  // Attributes (0x04-0x3F).
  ShortAttribute: 0x04, // name
  Attribute: 0x05, // prefix, name
  ShortDictionaryAttribute: 0x06, // dict name
  DictionaryAttribute: 0x07, // prefix, dict name
  ShortXmlnsAttribute: 0x08, // value (xmlns="…")
  XmlnsAttribute: 0x09, // prefix, value
  ShortDictionaryXmlnsAttribute: 0x0a, // dict value
  DictionaryXmlnsAttribute: 0x0b, // prefix, dict value
  PrefixDictionaryAttributeA: 0x0c, // …Z = 0x25: prefix is the letter, dict name
  PrefixAttributeA: 0x26, // …Z = 0x3F: prefix is the letter, name
  // Elements (0x40-0x77).
  ShortElement: 0x40, // name
  Element: 0x41, // prefix, name
  ShortDictionaryElement: 0x42, // dict name
  DictionaryElement: 0x43, // prefix, dict name
  PrefixDictionaryElementA: 0x44, // …Z = 0x5D
  PrefixElementA: 0x5e, // …Z = 0x77
  // Text (0x80-0xBD; +1 = …WithEndElement).
  ZeroText: 0x80,
  OneText: 0x82,
  FalseText: 0x84,
  TrueText: 0x86,
  Int8Text: 0x88,
  Int16Text: 0x8a,
  Int32Text: 0x8c,
  Int64Text: 0x8e,
  FloatText: 0x90,
  DoubleText: 0x92,
  DecimalText: 0x94,
  DateTimeText: 0x96,
  Chars8Text: 0x98,
  Chars16Text: 0x9a,
  Chars32Text: 0x9c,
  Bytes8Text: 0x9e,
  Bytes16Text: 0xa0,
  Bytes32Text: 0xa2,
  StartListText: 0xa4,
  EndListText: 0xa6,
  EmptyText: 0xa8,
  DictionaryText: 0xaa,
  UniqueIdText: 0xac,
  TimeSpanText: 0xae,
  UuidText: 0xb0,
  UInt64Text: 0xb2,
  BoolText: 0xb4,
  UnicodeChars8Text: 0xb6,
  UnicodeChars16Text: 0xb8,
  UnicodeChars32Text: 0xba,
  QNameDictionaryText: 0xbc,
} as const

export const FIRST_ATTRIBUTE = 0x04
export const LAST_ATTRIBUTE = 0x3f
export const FIRST_ELEMENT = 0x40
export const LAST_ELEMENT = 0x77
export const FIRST_TEXT = 0x80
export const LAST_TEXT = 0xbd

/** The prefix a Prefix…A-Z record stands for: 'a' + offset. */
export const LETTERS = 'abcdefghijklmnopqrstuvwxyz'

/** The letter index (0-25) of a one-letter lower-case prefix, else -1. */
export function letterOf (prefix: string): number {
  if (prefix.length !== 1) return -1
  const c = prefix.charCodeAt(0) - 0x61
  return c >= 0 && c < 26 ? c : -1
}

/** Bytes of the MB32 (7 bits per byte, low first, high bit = more) encoding of `n` (0 ≤ n < 2^31). */
export function mb32Size (n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

/** Names of the text records, for messages. */
export function recordName (type: number): string {
  for (const [name, v] of Object.entries(R)) if (v === type || (type >= FIRST_TEXT && v === (type & ~1))) return type >= FIRST_TEXT && (type & 1) === 1 ? `${name}WithEndElement` : name
  if (type >= R.PrefixDictionaryAttributeA && type <= 0x25) return `PrefixDictionaryAttribute${LETTERS[type - 0x0c]!.toUpperCase()}`
  if (type >= R.PrefixAttributeA && type <= 0x3f) return `PrefixAttribute${LETTERS[type - 0x26]!.toUpperCase()}`
  if (type >= R.PrefixDictionaryElementA && type <= 0x5d) return `PrefixDictionaryElement${LETTERS[type - 0x44]!.toUpperCase()}`
  if (type >= R.PrefixElementA && type <= 0x77) return `PrefixElement${LETTERS[type - 0x5e]!.toUpperCase()}`
  return `0x${type.toString(16).padStart(2, '0')}`
}
