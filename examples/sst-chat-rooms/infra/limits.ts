export const limits = new sst.Linkable("Limits", {
  properties: {
    maxMembers: $dev ? 5 : 500,
    maxMessageLength: 500,
    stage: $app.stage,
  },
});
