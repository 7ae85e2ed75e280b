/**
 * The one way FedHub's panels make a DOM node: text only through textContent (what they show
 * comes from the network, never as HTML).
 */
export function el(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}
