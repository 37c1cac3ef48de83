// Building the page's elements from data: text always goes in as text, never as markup.

/**
 * An element with attributes and children: `h("a", {href: "#/"}, "Back")`.
 * Attributes that are false, null or undefined are left out; `true` sets an empty one;
 * `on<event>` attributes become listeners. Children may be strings, nodes or nested arrays.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** `IN_PROGRESS` → `In progress`. */
export function words(value) {
  if (!value) return "";
  const text = value.toLowerCase().replaceAll("_", " ");
  return text[0].toUpperCase() + text.slice(1);
}

/** A moment as the reader's locale writes it. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** Say something to screen readers through a polite live region. */
export function announce(region, message) {
  // a repeat of the same words is still announced: clear first, then set on the next frame
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}
