// Tiny DOM helpers. Text always goes in as text nodes, never as HTML, so API data cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const alertBox = () => document.getElementById("alert");

export function showError(error) {
  const box = alertBox();
  const code = error && error.code ? ` (${error.code})` : "";
  box.textContent = `${error && error.message ? error.message : String(error)}${code}`;
  box.hidden = false;
}

export function clearError() {
  const box = alertBox();
  box.hidden = true;
  box.textContent = "";
}

export function formatCount(n) {
  return `${n} ${n === 1 ? "viewer" : "viewers"}`;
}

export function formatDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

// Runs `action`, showing an API error in the alert region instead of throwing.
export async function guarded(action) {
  clearError();
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API needs a secure context; fall back to selecting the text for the user.
    input?.select();
    return document.execCommand && document.execCommand("copy");
  }
}
