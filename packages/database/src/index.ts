export { Prisma, PrismaClient } from "../generated/client";
export {
  BotStatus,
  JobOutcome,
  MeetingPlatform,
  MeetingStatus,
  NotificationStatus,
  OrganizationStatus,
  ProviderCallStatus,
  RecordingImportStatus,
  RecordingUploadStatus,
  Role,
  StorageObjectKind,
  StorageObjectSource,
  SubscriptionStatus,
} from "../generated/client";
export type {
  ApiKey,
  BillingCustomer,
  Bot,
  CustomerPaymentMethod,
  CustomerTaxId,
  DeletedMembership,
  Dispute,
  JobRun,
  Meeting,
  Membership,
  Notification,
  Organization,
  PaymentConfirmation,
  Plan,
  ProcessedWebhook,
  ProviderCall,
  RecordingImport,
  RecordingUpload,
  StorageObject,
  Subscription,
  User,
} from "../generated/client";
export {
  createPrismaClient,
  isRecordNotFound,
  isUniqueViolation,
  STATEMENT_GRACE_MS,
  type CreatePrismaClientOptions,
  type Db,
} from "./client";
export {
  executeStatement,
  isSqlTransaction,
  queryRows,
  runFirstStatement,
  runLastStatement,
  runTransaction,
  sqlTransaction,
  type SqlStatement,
  type TransactionBracket,
  type SqlDb,
  type SqlTransaction,
  type SqlValue,
} from "./sql";
export {
  databasePackageRoot,
  pendingMigrations,
  PendingMigrationsError,
  runMigrations,
  type MigrationResult,
  type RunMigrationsOptions,
} from "./migrate";
export { DEFAULT_PLANS, seedPlans, type PlanSeed, type SeedPlansOptions } from "./seed";
export {
  EmbeddedDatabaseInUseError,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
  type StartEmbeddedPostgresOptions,
} from "./embedded";
export { activeBotSql, isTerminalBotStatus, TERMINAL_BOT_STATUSES } from "./activeBots";
export {
  hasSqlState,
  isDatabaseUnavailable,
  postgresErrorOf,
  uniqueViolationOf,
  type PostgresError,
} from "./pgErrors";
