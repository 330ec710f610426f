import { createRoot } from 'react-dom/client';
// Languages first: <html lang> and the SDK's texts are set before anything renders.
import './i18n/index.ts';
import './i18n/sdk-text.ts';
import { App } from './App.tsx';
import './styles.css';

createRoot(document.getElementById('root')!).render(<App />);
