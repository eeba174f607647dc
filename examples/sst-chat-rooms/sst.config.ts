/// <reference path="./.sst/platform/config.d.ts" />

// Chat rooms on API Gateway WebSockets: rooms and their members in a
// DynamoDB table, an admin secret, a message of the day, room limits.
// `sst deploy` deploys it to AWS; `wsgate serve` runs it locally.
export default $config({
  app(input) {
    return {
      name: "chat-rooms",
      removal: input?.stage === "production" ? "retain" : "remove",
      home: "aws",
    };
  },
  async run() {
    // Infra files are imported inside run(), as SST recommends; the path
    // of one is built at runtime.
    const { rooms } = await import("./infra/storage");
    const parts = ["secrets", "limits"];
    const [{ adminToken, motd }, { limits }] = await Promise.all(
      parts.map((part) => import(`./infra/${part}.js`)),
    );
    const { api } = await import("./infra/api");
    await import("./infra/web");

    return {
      url: api.url,
      managementEndpoint: api.managementEndpoint,
      tryIt: $interpolate`${api.url}?name=alice`,
      table: rooms.name,
      stage: $app.stage,
      linked: [adminToken.name, motd.name, limits.name],
    };
  },
});
