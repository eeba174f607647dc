// The browser client, deployed on AWS; wsgate does not run static sites
// (it is listed as "not run locally").
export const web = new sst.aws.StaticSite("Web", {
  path: "packages/web",
  environment: { VITE_URL: (await import("./api")).api.url },
});
