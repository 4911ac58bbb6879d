// The file loader (build.mjs) turns these imports into the URL of the copied, hashed file.
declare module "*.png" {
  const url: string;
  export default url;
}
