/**
 * Code page 437 (the VGA's built-in character set) to Unicode, with the
 * glyph meanings of the control range 0x01-0x1F and 0x7F, as the IBM PC
 * displays them. 0x00 and 0xFF are blank cells and map to a space and NBSP.
 */
const LOW = ' ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼';
const HIGH =
  'ÇüéâäàåçêëèïîìÄÅ' +
  'ÉæÆôöòûùÿÖÜ¢£¥₧ƒ' +
  'áíóúñÑªº¿⌐¬½¼¡«»' +
  '░▒▓│┤╡╢╖╕╣║╗╝╜╛┐' +
  '└┴┬├─┼╞╟╚╔╩╦╠═╬╧' +
  '╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀' +
  'αßΓπΣσµτΦΘΩδ∞φε∩' +
  '≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** CP437 byte -> Unicode string of one character. */
export const CP437: readonly string[] = (() => {
  const t: string[] = [];
  for (const ch of LOW) t.push(ch);
  for (let c = 0x20; c < 0x7f; c++) t.push(String.fromCharCode(c));
  t.push('⌂');
  for (const ch of HIGH) t.push(ch);
  return t;
})();
