// The backend under test, as the page imports it: a module the run's Vite server makes up (server.ts), whose
// default export is the backend entry's namespace.
declare module "virtual:nnspec-backend" {
  const backend: Record<string, unknown>;
  export default backend;
}
