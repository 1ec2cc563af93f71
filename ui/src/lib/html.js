// htm bound to preact's h: html`<div class=${c}>...</div>`.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
