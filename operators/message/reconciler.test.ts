import { leaderElectionSuite, messageSuite } from './message.suite.js';
import { messageController } from './reconciler.js';

messageSuite('reconcile', messageController);
leaderElectionSuite('reconcile', messageController);
