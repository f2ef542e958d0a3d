import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { readSettings } from "./settings";
import "./styles.css";

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App settings={readSettings()} />
    </StrictMode>,
  );
}
