import { createRoot } from 'react-dom/client';
import { App } from './ui/App.tsx';
import { LabContext, LabStore } from './ui/store.ts';
import { createBrowserSession } from './lab/browser.ts';
import './ui/lab.css';

// A bare URL opens the "first look" preset: small enough for a CPU-only WebGPU adapter.
const session = createBrowserSession(location.hash.length > 1 ? location.hash : '#preset=first-look');
const store = new LabStore(session);
// Tests and the headless command drive the same session the UI shows.
(window as unknown as { slideLab: typeof session }).slideLab = session;

createRoot(document.getElementById('root')!).render(
  <LabContext.Provider value={store}>
    <App />
  </LabContext.Provider>,
);

if (!session.lastError) void session.loadDefaultData();
