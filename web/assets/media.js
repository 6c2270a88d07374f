// Quiz images on the host screen and the phones: the question's and each choice's. They are
// plain quiz content, sent alike to every audience before the reveal (never a hint of which
// choice is right); CSS bounds their size for a big screen and for a phone.
import { el } from '/assets/net.js';

/** Show `url` as the question's image right after `anchor` (or remove the one there). */
export function placeQuestionImage(anchor, url, alt) {
  const next = anchor.nextElementSibling;
  let img = next && next.classList.contains('q-image') ? next : null;
  if (!url) {
    if (img) img.remove();
    return;
  }
  if (!img) {
    img = el('img', { class: 'q-image', decoding: 'async' });
    anchor.after(img);
  }
  if (img.getAttribute('src') !== url) img.setAttribute('src', url);
  img.alt = alt;
}

/** A choice's image inside its button or tile (its text says what it is: alt is empty). */
export function choiceImage(url) {
  return url ? el('img', { class: 'choice-image', src: url, alt: '', decoding: 'async' }) : null;
}
