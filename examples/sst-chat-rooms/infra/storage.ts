// One table: a room's members are items (pk = room, sk = connection id);
// the ByConnection index finds the rooms of a connection; members expire
// a day after they last spoke.
export const rooms = new sst.aws.Dynamo("Rooms", {
  fields: {
    pk: "string",
    sk: "string",
    connectionId: "string",
  },
  primaryIndex: { hashKey: "pk", rangeKey: "sk" },
  globalIndexes: {
    ByConnection: { hashKey: "connectionId", rangeKey: "pk" },
  },
  ttl: "expiresAt",
});
