import { rooms } from "./storage";
import { adminToken, motd } from "./secrets";
import { limits } from "./limits";

export const api = new sst.aws.ApiGatewayWebSocket("ChatApi", {
  transform: {
    route: {
      // Every route's function: a 10 second timeout.
      handler: (args) => {
        args.timeout = "10 seconds";
      },
    },
  },
});

const handler = (name: string) => `packages/functions/src/${name}`;
// What every route links: the table, the limits and the API itself (to
// push to connections).
const shared = [rooms, limits, api];

api.route("$connect", { handler: handler("connection.connect"), link: [...shared, motd] });
api.route("$disconnect", { handler: handler("connection.disconnect"), link: shared });
api.route("join", { handler: handler("rooms.join"), link: shared });
api.route("say", { handler: handler("rooms.say"), link: shared });
api.route("leave", { handler: handler("rooms.leave"), link: shared });
api.route("announce", {
  handler: handler("rooms.announce"),
  link: [...shared, adminToken],
  environment: { ANNOUNCER: "admin" },
});
// A literal `$default` export, as some apps name it.
api.route("$default", { handler: handler("connection.$default"), link: shared });
