import { fileURLToPath } from "node:url";

/**
 * The built page: dist/web beside dist/server in an installed package, and the
 * same folder from src/server in a clone (both are two levels below the root).
 */
export const WEB_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));
