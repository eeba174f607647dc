// The admin token must be set (`sst secret set AdminToken ...`, or
// `wsgate secret set AdminToken ...` locally); the message of the day has
// a placeholder.
export const adminToken = new sst.Secret("AdminToken");
export const motd = new sst.Secret("Motd", "Welcome to chat-rooms!");
